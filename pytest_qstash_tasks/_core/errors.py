"""Exceptions the fake raises in the code under test."""

from __future__ import annotations

__all__ = ["QStashTasksLoopError"]


class QStashTasksLoopError(BaseException):
    """The client sent the same request, and got the same answer, too many times.

    A ``BaseException`` on purpose: retry loops commonly catch ``Exception``, and this
    must end the loop and fail the test rather than be retried forever.
    """
