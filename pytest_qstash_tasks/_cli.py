"""``qstash-tasks-fake``: the fake outside pytest, for local development, docker-compose
and tests in other languages (``python -m pytest_qstash_tasks`` is the same command).

    qstash-tasks-fake serve --port 0 --data tasks.json

The first line it prints on standard output is the base URL; one line per request goes
to standard error unless ``--quiet``. It stops cleanly on SIGINT, SIGTERM and, with
``--stdin-eof``, when standard input closes (a parent process that goes away).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from ._transports.server import QStashTasksServer

__all__ = ["main"]

PROG = "qstash-tasks-fake"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns its exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command != "serve":
        parser.print_help(sys.stderr)
        return 2
    try:
        if args.dev:
            _dev_settings(args)
        fake = _build(args)
    except _UsageError as error:
        parser.exit(2, f"{PROG}: error: {error}\n")
    return _serve(fake, args)


class _UsageError(Exception):
    """Arguments or a data file the command cannot use."""


#: Upstash's dev server's published credentials (its first test user's; qstash-js's
#: dev mode checks GET /v2/keys against these keys before it would start the binary).
DEV_TOKEN = "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0="
DEV_CURRENT_SIGNING_KEY = "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r"
DEV_NEXT_SIGNING_KEY = "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs"
DEV_PORT = 8080
#: Seconds between writes of the state file (``--state-every``).
STATE_EVERY = 5.0


def _dev_settings(args: argparse.Namespace) -> None:
    """``--dev``: where and how Upstash's dev server serves, for an app in dev mode to
    find the fake in its place: its port ($QSTASH_DEV_PORT, else 8080, unless --port
    names one), its token (unless --token), its signing keys, deliveries over HTTP on
    the wall clock."""
    if args.port == 0:
        raw = os.environ.get("QSTASH_DEV_PORT", "")
        if raw and not (raw.isascii() and raw.isdigit() and 0 < int(raw) < 65536):
            raise _UsageError(f"QSTASH_DEV_PORT must be a port 1-65535, got {raw!r}")
        args.port = int(raw) if raw else DEV_PORT
    if args.token is None:
        args.token = DEV_TOKEN
    args.current_signing_key = DEV_CURRENT_SIGNING_KEY
    args.next_signing_key = DEV_NEXT_SIGNING_KEY
    args.deliver = True
    args.clock = "wall"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="A fake of Upstash QStash's GET /v1/messages/{messageId}/tasks and the "
        "message API around it (publish, enqueue, batch, messages, URL groups).",
    )
    commands = parser.add_subparsers(dest="command", metavar="command")
    _add_serve(commands)
    return parser


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``serve``: where it listens, how the fake behaves, how it delivers, in the order
    its help lists them."""
    serve = commands.add_parser(
        "serve",
        help="serve the fake over HTTP until stopped",
        description="Serve the fake over HTTP, with control endpoints under /_fake/. "
        "The first line printed is the base URL.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="IP address (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="port; 0 (default) takes a free one")
    serve.add_argument(
        "--token",
        help="the only bearer token accepted, by the API and the control endpoints "
        "(default: any non-empty token, and open control endpoints)",
    )
    _add_fake_options(serve)
    _add_delivery_options(serve)
    serve.add_argument(
        "--data",
        type=Path,
        help="a JSON file of messages, DLQ entries and schedules to load at start",
    )
    serve.add_argument(
        "--state",
        type=Path,
        metavar="FILE",
        help="keep the fake's state in FILE: loaded at start if it exists (else --data "
        "seeds it), written every --state-every seconds and at stop",
    )
    serve.add_argument(
        "--state-every",
        type=float,
        default=STATE_EVERY,
        metavar="SECONDS",
        help=f"how often the state file is written (default: {STATE_EVERY:g}; 0: only at stop)",
    )
    serve.add_argument(
        "--dev",
        action="store_true",
        help="stand in for Upstash's dev server: port $QSTASH_DEV_PORT or 8080 (unless "
        "--port), its published token (unless --token) and signing keys, --deliver, "
        "--clock wall",
    )
    serve.add_argument("--quiet", action="store_true", help="no line per request")
    serve.add_argument(
        "--stdin-eof", action="store_true", help="also stop when standard input closes"
    )


def _add_fake_options(serve: argparse.ArgumentParser) -> None:
    """The fake's settings: its data, pages, clock, loop guard and publishing."""
    serve.add_argument("--seed", type=int, default=0, help="seed of generated tasks (default: 0)")
    serve.add_argument("--page-size", type=int, default=100, help="tasks per page (default: 100)")
    serve.add_argument(
        "--end-cursor",
        choices=["0", "omit"],
        default="0",
        help="the last page's cursor: 0 (default) or omit the field",
    )
    serve.add_argument(
        "--start", help="where the clock starts: unix ms or ISO 8601 (default: 2026-01-01Z)"
    )
    serve.add_argument(
        "--clock",
        choices=["fake", "wall"],
        default="fake",
        help="fake (default): time moves through POST /_fake/clock only; wall: it "
        "follows the system clock, and deliveries are made when due, with no request",
    )
    serve.add_argument(
        "--max-identical-requests",
        type=int,
        default=100,
        help="identical requests in a row before the answer is 508 (default: 100)",
    )
    serve.add_argument(
        "--max-chained-events",
        type=int,
        default=5000,
        help="events scheduled during one move of the clock that the move may run "
        "before it stops as a runaway chain (default: 5000)",
    )
    serve.add_argument(
        "--default-retries",
        type=int,
        default=3,
        help="retries of a published message that sends no Upstash-Retries (default: 3)",
    )
    serve.add_argument(
        "--default-answer",
        type=int,
        default=200,
        help="the HTTP status a delivery attempt meets at a destination no script covers "
        "(default: 200, delivered); script destinations with POST /_fake/destinations",
    )
    serve.add_argument(
        "--max-message-size",
        type=int,
        default=1_048_576,
        help="the largest body a publish may send, in bytes (default: 1048576)",
    )


def _add_delivery_options(serve: argparse.ArgumentParser) -> None:
    """How published messages reach their destinations: over HTTP, signed, in time."""
    serve.add_argument(
        "--deliver",
        action="store_true",
        help="deliver published messages over real HTTP to their destinations (any host), "
        "signed; without it, attempts meet --default-answer or POST /_fake/destinations",
    )
    serve.add_argument(
        "--current-signing-key",
        default=os.environ.get("QSTASH_CURRENT_SIGNING_KEY"),
        help="the key deliveries are signed with (default: $QSTASH_CURRENT_SIGNING_KEY, "
        "else a fixed sig_... key); printed at start",
    )
    serve.add_argument(
        "--next-signing-key",
        default=os.environ.get("QSTASH_NEXT_SIGNING_KEY"),
        help="the next signing key (default: $QSTASH_NEXT_SIGNING_KEY, else a fixed one)",
    )
    serve.add_argument(
        "--delivery-timeout",
        type=float,
        default=10.0,
        help="seconds a destination may take to answer a delivery (default: 10)",
    )


def _build(args: argparse.Namespace) -> QStashTasksServer:
    from ._core.exchange import ascii_int
    from ._core.report import COMMAND
    from ._transports.server import QStashTasksServer

    settings: dict[str, Any] = {
        "token": args.token,
        "seed": args.seed,
        "page_size": args.page_size,
        "end_cursor": 0 if args.end_cursor == "0" else None,
        "max_identical_requests": args.max_identical_requests,
        "max_chained_events": args.max_chained_events,
        "default_retries": args.default_retries,
        "default_answer": args.default_answer,
        "max_message_size": args.max_message_size,
        "current_signing_key": args.current_signing_key,
        "next_signing_key": args.next_signing_key,
        "delivery_timeout": args.delivery_timeout,
        "clock": args.clock,
        "guard_real_qstash": False,  # no client of this process to guard
    }
    if args.start is not None:
        number = ascii_int(args.start)
        settings["start"] = args.start if number is None else number
    log = None if args.quiet else _access_log(sys.stderr)
    try:
        fake = QStashTasksServer(
            host=args.host, port=args.port, control=True, access_log=log, **settings
        )
        fake._owner_name = COMMAND  # its advice names options and control endpoints
        if args.deliver:
            import re

            def deliver_everywhere() -> None:
                # Any destination (a service in docker-compose is no loopback address);
                # scripts made through POST /_fake/destinations come first.
                everywhere = fake.destination(re.compile(r"^https?://"))
                everywhere.deliver_to("http", allow_remote=True)

            deliver_everywhere()
            assert fake._control is not None  # control=True
            fake._control.after_reset.append(deliver_everywhere)
    except OSError as error:
        raise _UsageError(f"cannot listen on {args.host}:{args.port}: {error}") from None
    except (ValueError, TypeError) as error:
        raise _UsageError(_with_option(str(error), settings)) from None
    args.state_loaded = False
    if args.state is None and args.state_every != STATE_EVERY:
        fake.stop()
        raise _UsageError("--state-every: it says how often --state FILE is written; give --state")
    try:
        if args.state is not None:
            args.state_loaded = _load_state(fake, args.state, args.state_every)
        if args.data is not None:  # what /_fake/reset goes back to, state file or not
            _load(fake, args.data, apply=not args.state_loaded)
    except _UsageError:
        fake.stop()
        raise
    return fake


def _with_option(text: str, settings: dict[str, Any]) -> str:
    """``--page-size: page_size must be ...``: the option a setting's error is about."""
    for name in ("host", "port", *settings):
        if text.startswith(name):
            return f"--{name.replace('_', '-')}: {text}"
    return text


def _load(fake: QStashTasksServer, path: Path, *, apply: bool = True) -> None:
    from ._core.control.data_file import DataFile, SpecError, apply_data, parse
    from ._core.exchange import parse_json

    try:
        data = parse_json(path.read_text())
    except OSError as error:
        raise _UsageError(f"--data {path}: {error.strerror}") from None
    except ValueError as error:
        raise _UsageError(f"--data {path}: not JSON: {error}") from None
    try:
        spec = parse(DataFile, data, "")
    except SpecError as error:
        raise _UsageError(f"--data {path}:\n{error}") from None
    try:
        if apply:
            apply_data(fake, spec)
    except SpecError as error:
        raise _UsageError(f"--data {path}: {error}") from None
    assert fake._control is not None  # the command's fake has its control plane
    fake._control.data = spec  # what POST /_fake/reset returns to


def _load_state(fake: QStashTasksServer, path: Path, every: float) -> bool:
    """Put the state file's state in the fake; ``False`` when there is no file yet (one
    that can be made there: the first write must not fail after an hour of work)."""
    from ._core.control.state_file import StateFileError, restore

    if not every >= 0 or every == float("inf"):
        raise _UsageError(f"--state-every: seconds >= 0, got {every!r}")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise _UsageError(f"--state {path}: no directory {str(path.parent)!r}") from None
        if not os.access(path.parent, os.W_OK):
            raise _UsageError(f"--state {path}: cannot write in {str(path.parent)!r}") from None
        return False
    except OSError as error:
        raise _UsageError(f"--state {path}: {error.strerror}") from None
    try:
        restore(fake, data)
    except StateFileError as error:
        raise _UsageError(f"--state {path}: cannot load it: {error}") from None
    for left in path.parent.glob(f".{path.name}.*.tmp"):  # a write a kill cut short
        left.unlink(missing_ok=True)
    return True


def _access_log(stream: TextIO) -> Any:
    lock = threading.Lock()

    def log(method: str, target: str, status: int | None, seconds: float) -> None:
        shown = "-" if status is None else str(status)
        with lock:
            stream.write(f"{method} {target} {shown} {seconds * 1000:.1f} ms\n")
            stream.flush()

    return log


def _serve(fake: QStashTasksServer, args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(number: int, _: object) -> None:
        stop.set()

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, on_signal)
    if args.stdin_eof:
        threading.Thread(target=_wait_for_eof, args=(stop,), daemon=True).start()
    keeper = None
    if args.state is not None:
        from ._core.control.state_file import StateKeeper

        keeper = StateKeeper(fake, args.state, args.state_every, _tell)
    fake.start()
    try:
        # The banner first: once the URL is out, a client's request may be logged.
        messages = len(fake.message_ids())
        extra = [f"{len(fake.dlq.list())} in the DLQ", f"{len(fake.schedules.list())} schedule(s)"]
        extra = [part for part in extra if not part.startswith("0 ")]
        held = f"{messages} message(s)" + (f" ({', '.join(extra)})" if extra else "")
        sys.stderr.write(
            f"{PROG}: serving {held} at {fake.base_url}, control endpoints "
            f"at {fake.base_url}/_fake/, a page to look at {fake.base_url}/_fake/ui "
            "(stop with Ctrl-C)\n"
        )
        if args.deliver:
            sys.stderr.write(
                f"{PROG}: delivering published messages over HTTP, signed with "
                f"QSTASH_CURRENT_SIGNING_KEY={fake.current_signing_key} "
                f"QSTASH_NEXT_SIGNING_KEY={fake.next_signing_key}\n"
            )
        if keeper is not None:
            loaded = "loaded from" if args.state_loaded else "new, kept in"
            every = f"every {args.state_every:g} s and " if args.state_every > 0 else ""
            sys.stderr.write(f"{PROG}: state {loaded} {args.state}, written {every}at stop\n")
        sys.stderr.flush()
        if keeper is not None:
            keeper.start()
        print(fake.base_url, flush=True)
        stop.wait()
    finally:
        fake.stop()
        saved = keeper is None or keeper.stop()
    return 0 if saved else 1


def _tell(text: str) -> None:
    sys.stderr.write(f"{PROG}: {text}\n")
    sys.stderr.flush()


def _wait_for_eof(stop: threading.Event) -> None:
    for _ in iter(lambda: os.read(sys.stdin.fileno(), 65536), b""):
        pass  # whatever comes in is not for us: only its end is
    stop.set()
