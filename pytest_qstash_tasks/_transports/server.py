"""``QStashTasksServer``: the fake behind a real HTTP server on the loopback interface,
for every client: ``requests``, ``aiohttp``, ``urllib``, the official SDK, curl, a
subprocess, another language."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from pytest_qstash_tasks._core.exchange import Reply, Request
from pytest_qstash_tasks._core.fake import QStashTasksFake
from pytest_qstash_tasks._core.report import server_problems

from .http_server import MAX_HOLD_SECONDS, AccessLog, LoopbackServer

if TYPE_CHECKING:
    from pytest_qstash_tasks._core.control.endpoints import ControlPlane

__all__ = ["QStashTasksServer", "no_proxy_with"]


def no_proxy_with(host: str) -> str:
    """``NO_PROXY`` as this process has it (``no_proxy`` and ``NO_PROXY`` merged, as
    clients read either), with ``host`` added."""
    hosts: list[str] = []
    for name in ("no_proxy", "NO_PROXY"):
        for entry in os.environ.get(name, "").split(","):
            if entry.strip() and entry.strip() not in hosts:
                hosts.append(entry.strip())
    if host not in hosts:
        hosts.append(host)
    return ",".join(hosts)


class QStashTasksServer(QStashTasksFake):
    """The fake, served over HTTP at ``base_url`` (``http://127.0.0.1:<port>``).

    In tests, take the ``qstash_tasks_server`` fixture: one server per test session
    (per xdist worker), with a fresh fake for each test. Elsewhere use it as a context
    manager, sync or async::

        with QStashTasksServer() as fake:
            fake.add("msg_123", count=250)
            subprocess.run(["my-report", "msg_123"], env={**os.environ, **fake.env})

    This process's own clients are still stopped before the real QStash while it runs
    (by name resolution: the server fake intercepts nothing in-process).

    Args:
        host: The IP address to listen on: ``127.0.0.1`` (default) or ``::1``.
        port: The port; ``0`` (default) takes a free one.
        max_hold_seconds: How long a timeout planned with ``raise_next`` holds the
            answer when the client does not give up first.
        server: A running server to answer on, shared with other fakes one at a time
            (the ``qstash_tasks_loopback`` fixture's); by default the fake runs its own.
        control: Whether the control endpoints under ``/_fake/`` answer (the
            standalone command's: see the docs' standalone page).
        access_log: Told of every answered request (method, target, status or
            ``None``, seconds), for a server the fake runs itself.
        **settings: The fake's settings (``token``, ``page_size``, ``end_cursor``,
            ...: see ``QStashTasksFake``), all but ``base_url``, which is where the
            server listens.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_hold_seconds: float = MAX_HOLD_SECONDS,
        server: LoopbackServer | None = None,
        control: bool = False,
        access_log: AccessLog | None = None,
        **settings: Any,
    ) -> None:
        if "base_url" in settings:
            raise TypeError(
                "QStashTasksServer takes host= and port=, not base_url: its base URL is "
                "where it listens"
            )
        self._owns_server = server is None
        self._server = server or LoopbackServer(
            host, port, max_hold_seconds=max_hold_seconds, access_log=access_log
        )
        self._attached = False
        try:
            super().__init__(base_url=self._server.base_url, **settings)
        except BaseException:
            if self._owns_server:
                self._server.server_close()  # bad settings: free the port at once
            raise
        self._stray_before: list[str] = []
        self._control: ControlPlane | None = None
        if control:
            from pytest_qstash_tasks._core.control.endpoints import ControlPlane

            self._control = ControlPlane(self, self._config.token)

    @property
    def env(self) -> dict[str, str]:
        """``QSTASH_URL``, ``QSTASH_TOKEN`` and the signing keys for a subprocess or the
        official SDK, and ``NO_PROXY``/``no_proxy``: the ones of this process with the
        server's address added, so that a client told to use a proxy (``HTTP_PROXY``,
        ``ALL_PROXY``) still reaches the server directly."""
        bypass = no_proxy_with(self._server.host)
        return {**super().env, "NO_PROXY": bypass, "no_proxy": bypass}

    def problems(self) -> list[str]:
        """What ``verify()`` would report: the fake's problems, and the server's."""
        errors = list(self._server.internal_errors)
        return [*super().problems(), *server_problems(errors, self._stray_before, self.base_url)]

    # -- the transport --------------------------------------------------------------

    def _open(self) -> None:
        if self._owns_server:
            self._server.start()
        self._stray_before = self._server.take_stray()
        self._server.internal_errors.clear()  # reported by the fake that met them
        self._server.attach(self)
        self._attached = True

    def _close(self) -> None:
        if self._attached:
            self._attached = False
            self._server.detach(self)  # once the requests still being answered are done
            if self._owns_server:
                self._server.stop()
        elif self._owns_server and not self._server.running:
            self._server.server_close()  # never started: free the port

    def _clients_served(self) -> str:
        return (
            "It answers any HTTP client pointed at its base_url: set QSTASH_URL (see env) "
            "before the client is created, or pass the base URL to the client."
        )

    def _dispatch(self, request: Request) -> Reply:
        """The control endpoints' answer, if enabled and asked for; else the fake's."""
        if self._control is not None:
            reply = self._control.dispatch(request)
            if reply is not None:
                return reply
        return super()._dispatch(request)
