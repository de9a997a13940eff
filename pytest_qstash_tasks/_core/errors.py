"""Exceptions the fake raises in the code under test."""

from __future__ import annotations

__all__ = ["QStashTasksLoopError", "QStashTasksRealHostError", "QStashTasksRunawayError"]


class QStashTasksLoopError(BaseException):
    """The client sent the same request, and got the same answer, too many times.

    A ``BaseException`` on purpose: retry loops commonly catch ``Exception``, and this
    must end the loop and fail the test rather than be retried forever.
    """

    __module__ = "pytest_qstash_tasks"  # as tracebacks name it: where users import it from


class QStashTasksRealHostError(BaseException):
    """The code under test sent a request to the real QStash while a fake was active.

    Raised in the client at once, before anything reaches the network. A
    ``BaseException`` for the same reason as ``QStashTasksLoopError``: the official SDK
    retries any ``Exception`` for about 30 seconds.
    """

    __module__ = "pytest_qstash_tasks"


class QStashTasksRunawayError(BaseException):
    """One move of the clock ran more events that were scheduled during that same move
    than ``max_chained_events`` allows: a chain of messages that never ends (a receiver
    that publishes again on every delivery).

    Raised by the move (``clock.advance``, ``sleep``, ``set``, ``run_all``, or a sleep
    under ``patch_sleep``), with the clock left at the last event run and the rest of
    the chain still due; ``verify()`` reports it at teardown too. A ``BaseException`` for
    the same reason as ``QStashTasksLoopError``.
    """

    __module__ = "pytest_qstash_tasks"
