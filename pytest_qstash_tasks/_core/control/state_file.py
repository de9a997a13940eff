"""The standalone fake's state file (``serve --state FILE``): everything QStash would
keep across a restart, as JSON, written atomically and read back whole or not at all.

What it holds is the fake's state as it lives in memory: the stored tasks, the
published messages with their delivery progress, the agenda of what is still to happen
(attempts, retries, schedule firings, flow-control wakes, wait timeouts), queues, flow
keys, URL groups, the DLQ, workflow runs, the logs, the signing keys, the id stream and
the clock. How each object is written and read is ``state_codec.py``'s; this module is
the file: its format and version, the parts of the fake it restores in place, the write
(at a moment no event is under way, to a temporary file renamed over the old one) and
the keeper that writes it while the command runs.

``STATE_VERSION`` names the layout: a change to a state class's fields changes it
(``tests/test_state_file.py`` pins the layout, so the change cannot go unnoticed), and
a file of another version is refused in words.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .state_codec import Decoder, Encoder, StateFileError

if TYPE_CHECKING:
    from pytest_qstash_tasks._core.fake import QStashTasksFake

__all__ = [
    "FORMAT",
    "STATE_VERSION",
    "StateFileError",
    "StateKeeper",
    "read_state",
    "restore",
    "snapshot",
    "write_state",
]

FORMAT = "qstash-tasks-fake state"
#: The layout of the state classes this version writes and reads.
STATE_VERSION = 1
#: How long a snapshot waits for the events under way to finish (a receiver answering).
_QUIET_SECONDS = 30.0


def _roots(fake: QStashTasksFake) -> dict[str, object]:
    """The fake's parts a state file restores in place, by the name the file gives them."""
    outbox = fake._outbox
    roots: dict[str, object] = {
        "store": fake._store,
        "agenda": fake._agenda,
        "outbox": outbox,
        "log": outbox.log,
        "flow": outbox.flow,
        "queues": outbox.queues,
        "runs": outbox.runs,
        "dlq": fake._dlq,
        "schedules": fake._schedules,
        "keys": fake._keys,
    }
    if fake._stream is not None:
        roots["ids"] = fake._stream
    return roots


# -- writing ----------------------------------------------------------------------------


def snapshot(fake: QStashTasksFake) -> bytes:
    """The fake's state as the file's bytes. Taken with the fake's lock held, once no
    event is under way (a receiver answering), so that nothing is caught half done."""
    with fake._timeline.quiet(_QUIET_SECONDS):
        encoder = Encoder()
        state = {name: encoder.root(obj) for name, obj in _roots(fake).items()}
        now = fake.clock.now
    document = {"format": FORMAT, "version": STATE_VERSION, "clock": now, "state": state}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def write_state(fake: QStashTasksFake, path: Path, last: bytes | None = None) -> bytes:
    """Write the fake's state to ``path`` atomically (a temporary file beside it, synced,
    then renamed over it: a crash leaves the last good file); nothing is written when
    the state is ``last`` again. Returns what the file holds."""
    data = snapshot(fake)
    if data == last:
        return data
    directory = path.parent
    temporary = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
    # Made as any new file is (the umask applies), or with the mode the file has.
    try:
        mode: int | None = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = None
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as stream:
            if mode is not None:
                os.fchmod(stream.fileno(), mode)  # past the umask: as the user set it
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a power cut
        directory_handle = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(directory_handle)
        finally:
            os.close(directory_handle)
    return data


# -- reading ----------------------------------------------------------------------------


def read_state(data: bytes) -> dict[str, Any]:
    """The document in ``data``, its format and version checked; ``StateFileError``
    otherwise."""
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise StateFileError(f"not UTF-8 text: {error}") from None
    except RecursionError:
        raise StateFileError("nested too deep for a state file") from None
    except ValueError as error:
        raise StateFileError(f"not JSON ({error}): cut short, or not a state file") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise StateFileError(f'not a state file: its "format" is not {FORMAT!r}')
    version = document.get("version")
    if type(version) is not int:
        raise StateFileError(f'its "version" is {version!r}, not a number')
    if version > STATE_VERSION:
        raise StateFileError(
            f"written by a newer qstash-tasks-fake (state version {version}; this one "
            f"reads version {STATE_VERSION}): upgrade it, or start without the file"
        )
    if version < STATE_VERSION:
        raise StateFileError(
            f"written by an older qstash-tasks-fake (state version {version}; this one "
            f"reads version {STATE_VERSION}): start that version, or start without the file"
        )
    if type(document.get("clock")) is not int or not isinstance(document.get("state"), dict):
        raise StateFileError('no "clock" (unix ms) and "state" (an object)')
    return document


def restore(fake: QStashTasksFake, data: bytes) -> None:
    """Put the state in ``data`` in place of the fake's: all of it, or, with a
    ``StateFileError`` that says what is wrong and where, none of it."""
    document = read_state(data)
    roots = _roots(fake)
    state = document["state"]
    if set(state) != set(roots):
        missing = sorted(set(roots) - set(state))
        unknown = sorted(set(state) - set(roots))
        raise StateFileError(
            "its parts are not the fake's: "
            + "; ".join(
                part
                for part in (
                    f"missing {', '.join(missing)}" if missing else "",
                    f"unknown {', '.join(unknown)}" if unknown else "",
                )
                if part
            )
        )
    decoder = Decoder()
    decoded = {name: decoder.part(name, type(obj), state[name]) for name, obj in roots.items()}
    # Everything is read: only now does the fake change.
    with fake._timeline.quiet(_QUIET_SECONDS):
        for name, obj in roots.items():
            decoder.put(obj, decoded[name])
        decoder.finish()
        fake.clock._reach(document["clock"])


class StateKeeper:
    """Keeps the state file of a running fake: writes it every ``every`` seconds when
    the state changed (``0``: never on a timer) and once more at ``stop``. A write that
    fails is told once through ``tell``, and tried again at the next turn."""

    def __init__(
        self, fake: QStashTasksFake, path: Path, every: float, tell: Callable[[str], None]
    ) -> None:
        self.fake, self.path, self.every, self.tell = fake, path, every, tell
        self.last: bytes | None = None
        self.failed: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Write on a timer from now on, in a daemon thread."""
        if self.every > 0:
            self._thread = threading.Thread(
                target=self._loop, name="qstash-tasks-state", daemon=True
            )
            self._thread.start()

    def stop(self) -> bool:
        """The last write (once the fake has stopped); whether the file holds the state."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.write(force=True):  # the file may have gone since: written whatever
            return True
        self.tell(f"the state since the last write to {self.path} is lost")
        return False

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.write()

    def write(self, *, force: bool = False) -> bool:
        """Write the state if it changed (or ``force``); whether the file holds it now."""
        try:
            self.last = write_state(self.fake, self.path, None if force else self.last)
        except (OSError, TimeoutError) as error:
            # The reason, not the temporary file's name: the same failure is told once.
            text = f"could not write the state to {self.path}: {error.strerror or error}"
            if text != self.failed:
                self.tell(text)
            self.failed = text
            return False
        self.failed = None
        return True
