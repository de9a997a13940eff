"""The standalone fake's state file (``serve --state FILE``): everything QStash would
keep across a restart, as JSON, written atomically and read back whole or not at all.

What it holds is the fake's state as it lives in memory: the stored tasks, the
published messages with their delivery progress, the agenda of what is still to happen
(attempts, retries, schedule firings, flow-control wakes, wait timeouts), queues, flow
keys, URL groups, the DLQ, workflow runs, the logs, the signing keys, the id stream and
the clock. Each object is written as its class's name (one of an allow-list: nothing
else can be built) and its fields; an object met again is a reference to the first, so
a message in a queue and on the agenda is one message again once read. Reading builds
objects field by field, never calling code the file names, and checks each class's
fields are exactly the ones this version writes: a damaged or foreign file is refused
with the place it goes wrong, before the fake is touched.

``STATE_VERSION`` names the layout: a change to a state class's fields changes it
(``tests/test_state_file.py`` pins the layout, so the change cannot go unnoticed), and
a file of another version is refused in words.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import dataclasses
import json
import os
import random
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_qstash_tasks._core.fake import QStashTasksFake

__all__ = [
    "FORMAT",
    "STATE_VERSION",
    "StateFileError",
    "StateKeeper",
    "layout",
    "read_state",
    "restore",
    "snapshot",
    "write_state",
]

#: What the file says it is, beside its version.
FORMAT = "qstash-tasks-fake state"
#: The layout of the state classes this version writes and reads.
STATE_VERSION = 1
#: How long a snapshot waits for the events under way to finish (a receiver answering).
_QUIET_SECONDS = 30.0


class StateFileError(ValueError):
    """A state file that cannot be read back: the text says what is wrong and where."""


# -- what may be in the file ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Kind:
    """How one class is written: the fields written, in order (caches and the wiring
    between parts are left out), whether its instances have slots, and what to make
    again once one is read (an iterator, an identity marker)."""

    cls: type
    fields: tuple[str, ...]
    slots: bool = False
    after_load: Callable[[Any], None] | None = None


#: What a published message's delivery holds (it is no dataclass).
_DELIVERY_FIELDS = (
    "task_id", "message_id", "url", "max_retry", "created_at", "active_ms", "retry_delay",
    "retry_delays", "starts", "errors", "_canceled_at", "message", "flow_admitted",
)  # fmt: skip


def _kinds() -> dict[str, _Kind]:
    """The allow-list, built on first use (the command starts without these modules)."""
    from pytest_qstash_tasks._core.api.publishing import Publish
    from pytest_qstash_tasks._core.api.workflow_events import WaitTimeout
    from pytest_qstash_tasks._core.engine.signing import KeyRing
    from pytest_qstash_tasks._core.seeding import Stream
    from pytest_qstash_tasks._core.state.agenda import Agenda
    from pytest_qstash_tasks._core.state.dlq import DeadLetter, DeadLetterQueue
    from pytest_qstash_tasks._core.state.flow_control import (
        FlowControl,
        FlowKey,
        FlowLimits,
        FlowWake,
    )
    from pytest_qstash_tasks._core.state.lifecycle import SimulatedDelivery
    from pytest_qstash_tasks._core.state.logs import LogEntry, MessageLog
    from pytest_qstash_tasks._core.state.outbox import (
        Message,
        Outbox,
        PublishedDelivery,
        PublishedMessage,
        UrlGroupState,
    )
    from pytest_qstash_tasks._core.state.queues import Queue, QueueBook
    from pytest_qstash_tasks._core.state.schedules import Firing, Schedule, ScheduleBook
    from pytest_qstash_tasks._core.state.store import MessageTasks, ScriptedPages, TaskStore
    from pytest_qstash_tasks._core.state.workflows import (
        Invoker,
        Run,
        RunBook,
        RunMessage,
        Waiter,
    )

    def data(cls: type, leave_out: tuple[str, ...] = (), **rest: Any) -> _Kind:
        names = tuple(f.name for f in dataclasses.fields(cls) if f.name not in leave_out)
        return _Kind(cls, names, slots="__slots__" in vars(cls), **rest)

    def schedule_loaded(schedule: Schedule) -> None:
        schedule._times = (
            None if schedule.next_time is None else schedule.plan.times_after(schedule.next_time)
        )

    def store_loaded(store: TaskStore) -> None:
        store.version = object()

    kinds = [
        # The fake's own parts, restored in place (see _ROOTS).
        _Kind(TaskStore, ("messages", "scripted", "_registered"), after_load=store_loaded),
        _Kind(Agenda, ("_due_times", "_due_at", "scheduled")),
        _Kind(Outbox, ("published", "messages", "url_groups", "deduplication")),
        _Kind(MessageLog, ("_times", "_at", "_next")),
        _Kind(FlowControl, ("_keys",)),
        _Kind(QueueBook, ("_queues",)),
        _Kind(RunBook, ("_runs", "waiters", "kept")),
        _Kind(DeadLetterQueue, ("_entries", "_sequences", "_ordered", "_next")),
        _Kind(ScheduleBook, ("_schedules",)),
        _Kind(KeyRing, ("current", "next")),
        data(Stream, ("node_id", "seed", "clock")),
        # What they hold.
        data(MessageTasks),
        data(ScriptedPages),
        _Kind(PublishedDelivery, _DELIVERY_FIELDS),
        data(SimulatedDelivery),
        data(PublishedMessage),
        data(Message, ("_log_fields",)),
        data(UrlGroupState),
        data(LogEntry),
        data(DeadLetter),
        data(Schedule, ("_times",), after_load=schedule_loaded),
        data(Firing),
        data(Queue),
        data(FlowLimits),
        data(FlowKey),
        data(FlowWake),
        data(RunMessage),
        data(Invoker),
        data(Run),
        data(Waiter),
        data(WaitTimeout),
        data(Publish),
    ]
    return {kind.cls.__name__: kind for kind in kinds}


#: Values written by their own codec: (class name, to JSON, from JSON).
def _values() -> dict[type, tuple[str, Callable[[Any], Any], Callable[[Any], Any]]]:
    from pytest_qstash_tasks._core.engine.retry_delay import RetryDelay
    from pytest_qstash_tasks._core.models import Task, TasksPage
    from pytest_qstash_tasks._core.state.schedules import CronPlan, parse_cron

    def page_out(page: TasksPage) -> Any:
        return page.model_dump(mode="json", by_alias=True, exclude_unset=True)

    def task_out(task: Task) -> Any:
        return task.model_dump(mode="json", by_alias=True, exclude_unset=True)

    def random_in(value: Any) -> random.Random:
        rng = random.Random()
        version, internal, gauss = value
        rng.setstate((version, tuple(internal), gauss))
        return rng

    return {
        CronPlan: ("CronPlan", lambda plan: plan.text, parse_cron),
        RetryDelay: ("RetryDelay", lambda delay: delay.text, RetryDelay.parse),
        Task: ("Task", task_out, Task.model_validate),
        TasksPage: ("TasksPage", page_out, TasksPage.model_validate),
        random.Random: ("Random", lambda rng: list(rng.getstate()), random_in),
    }


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


def layout() -> dict[str, list[str]]:
    """Each class the file may hold and the fields written of it (the layout that
    ``STATE_VERSION`` names), and the classes written by value."""
    shown = {name: list(kind.fields) for name, kind in sorted(_kinds().items())}
    shown.update({name: ["(value)"] for name, _, _ in sorted(_values().values())})
    return shown


# -- writing ----------------------------------------------------------------------------


class _Encoder:
    """Writes the fake's parts. An object is known by its ``id()``: every object written
    belongs to the fake, alive and unchanged while the lock is held."""

    def __init__(self) -> None:
        self.kinds = {kind.cls: kind for kind in _kinds().values()}
        self.values = _values()
        self.seen: dict[int, int] = {}

    def root(self, obj: object) -> dict[str, Any]:
        kind = self.kinds[type(obj)]
        return {name: self.value(getattr(obj, name), name) for name in kind.fields}

    def value(self, value: Any, where: str) -> Any:
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None or kind is float:
            return value
        if kind is list:
            return [self.value(item, where) for item in value]
        if kind is dict:
            if all(type(key) is str and not key.startswith("$") for key in value):
                return {key: self.value(item, where) for key, item in value.items()}
            return {"$d": [[self.value(k, where), self.value(v, where)] for k, v in value.items()]}
        if kind is tuple:
            return {"$t": [self.value(item, where) for item in value]}
        if kind is bytes:
            return {"$b": base64.b64encode(value).decode("ascii")}
        if kind is set:
            try:  # the same state, the same bytes: an unchanged state is not written again
                items = sorted(value)
            except TypeError:
                items = list(value)
            return {"$s": [self.value(item, where) for item in items]}
        if kind is collections.deque:
            return {"$q": [self.value(item, where) for item in value]}
        coded = self.values.get(kind)
        if coded is not None:
            return {"$v": coded[0], "of": coded[1](value)}
        found = self.kinds.get(kind)
        if found is None:
            raise TypeError(
                f"the state file cannot hold {kind.__module__}.{kind.__qualname__} (in "
                f"{where}): a state class gained a field of a kind it does not know"
            )
        number = self.seen.get(id(value))
        if number is not None:
            return {"$r": number}
        number = self.seen[id(value)] = len(self.seen)
        fields = {name: self.value(getattr(value, name), name) for name in found.fields}
        return {"$o": kind.__name__, "$id": number, **fields}


def snapshot(fake: QStashTasksFake) -> bytes:
    """The fake's state as the file's bytes. Taken with the fake's lock held, once no
    event is under way (a receiver answering), so that nothing is caught half done."""
    with fake._timeline.quiet(_QUIET_SECONDS):
        encoder = _Encoder()
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


_SCALARS = frozenset({str, int, bool, float, type(None)})


class _Where(StateFileError):
    """A ``StateFileError`` on its way up: each level it passes adds where it is."""

    def __init__(self, text: str, *path: str) -> None:
        super().__init__(text)
        self.text, self.path = text, list(path)

    def at(self, step: str) -> _Where:
        self.path.append(step)
        return self

    def located(self, root: str) -> StateFileError:
        where = root + "".join(reversed(self.path))
        return StateFileError(f"{where}: {self.text}")


class _Decoder:
    """Builds the objects of a file's parts. Fast on the common path (a load is measured
    against ``json.load`` of the same file, docs/benchmarks.md): scalars are taken as
    they are without a call, and where an error is found is put together only when one
    is."""

    def __init__(self) -> None:
        self.kinds = _kinds()
        self.values = {name: decode for name, _, decode in _values().values()}
        self.made: dict[int, object] = {}
        self.loaded: list[tuple[Callable[[Any], None], object]] = []
        self.decode = self._decoder()

    def fields(self, kind: _Kind, data: dict[str, Any], skip: int = 0) -> dict[str, Any]:
        if tuple(data)[skip:] != kind.fields:
            missing = [name for name in kind.fields if name not in data]
            unknown = [name for name in data if name not in kind.fields and name[:1] != "$"]
            parts = [f"no {', '.join(missing)}" if missing else ""]
            parts.append(f"unknown {', '.join(unknown)}" if unknown else "")
            told = "; ".join(part for part in parts if part) or "its fields out of order"
            raise _Where(f"a {kind.cls.__name__} with {told}")
        decode, scalars = self.decode, _SCALARS
        for name, item in data.items():  # the parsed object is ours: decoded in place
            if type(item) in scalars:
                continue
            try:
                data[name] = decode(item)
            except _Where as error:
                raise error.at(f".{name}") from None
        if skip:
            del data["$o"], data["$id"]
        return data

    def _decoder(self) -> Callable[[Any], Any]:
        """The decoding of one value, a closure over what it looks up at every call."""
        scalars, made = _SCALARS, self.made
        make, coded, b64decode = self.object, self.coded, base64.b64decode
        containers: dict[str, Callable[[list[Any]], Any]] = {
            "$t": tuple, "$q": collections.deque, "$s": set, "$d": dict,
        }  # fmt: skip

        def decode(value: Any) -> Any:
            kind = type(value)
            if kind in scalars:
                return value
            if kind is list:  # the parsed list is ours: changed in place
                for index, item in enumerate(value):
                    if type(item) not in scalars:
                        try:
                            value[index] = decode(item)
                        except _Where as error:
                            raise error.at(f"[{index}]") from None
                return value
            if kind is not dict:
                raise _Where(f"unexpected {value!r}")
            if not value:
                return value
            tag = next(iter(value))
            if tag[:1] != "$":
                for key, item in value.items():
                    if type(item) not in scalars:
                        try:
                            value[key] = decode(item)
                        except _Where as error:
                            raise error.at(f"[{key}]") from None
                return value
            if tag == "$o":
                return make(value)
            if tag == "$v":
                return coded(value)
            inner = value[tag]
            if len(value) != 1:
                raise _Where(f"unexpected {_short(value)}")
            if tag == "$r":
                found = made.get(inner) if type(inner) is int else None  # [] is unhashable
                if found is None:
                    raise _Where(f"a reference to no object ({_short(value)})")
                return found
            if tag == "$b" and type(inner) is str:
                try:
                    return b64decode(inner, validate=True)
                except ValueError:
                    raise _Where(f"not base64: {_short(inner)}") from None
            container = containers.get(tag)
            if container is None or type(inner) is not list:
                raise _Where(f"unexpected {_short(value)}")
            for index, item in enumerate(inner):
                if type(item) not in scalars:
                    try:
                        inner[index] = decode(item)
                    except _Where as error:
                        raise error.at(f"[{index}]") from None
            try:
                return container(inner)
            except (TypeError, ValueError):
                raise _Where(f"unexpected {_short(value)}") from None

        return decode

    def coded(self, value: dict[str, Any]) -> Any:
        name = value["$v"]
        decode = self.values.get(name) if type(name) is str else None
        if decode is None or tuple(value) != ("$v", "of"):
            raise _Where(f"unexpected {_short(value)}")
        try:
            return decode(value["of"])
        except (ValueError, TypeError) as error:
            first = str(error).splitlines()[0]
            raise _Where(f"a {name} the fake refuses: {first}") from None

    def object(self, value: dict[str, Any]) -> Any:
        name, number = value["$o"], value.get("$id")
        kind = self.kinds.get(name) if type(name) is str else None
        if kind is None or name in _ROOT_CLASSES:
            raise _Where(f"{name!r} is no kind of object a state file holds")
        if type(number) is not int or number in self.made:
            raise _Where(f"a {name} with a bad or repeated $id ({number!r})")
        made: Any = object.__new__(kind.cls)
        self.made[number] = made
        try:
            fields = self.fields(kind, value, 2)
        except _Where as error:
            raise error.at(f"<{name} {number}>") from None
        if kind.slots:
            for field, item in fields.items():
                object.__setattr__(made, field, item)
        else:
            made.__dict__.update(fields)
        if kind.after_load is not None:
            self.loaded.append((kind.after_load, made))
        return made


_ROOT_CLASSES = frozenset(
    {
        "TaskStore", "Agenda", "Outbox", "MessageLog", "FlowControl", "QueueBook",
        "RunBook", "DeadLetterQueue", "ScheduleBook", "KeyRing",
    }
)  # fmt: skip


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


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
    decoder = _Decoder()
    kinds = decoder.kinds
    decoded: dict[str, dict[str, Any]] = {}
    for name, obj in roots.items():
        part = state[name]
        try:
            if not isinstance(part, dict):
                raise _Where("not an object")
            decoded[name] = decoder.fields(kinds[type(obj).__name__], part)
        except _Where as error:
            raise error.located(f"state.{name}") from None
        except RecursionError:
            raise StateFileError(f"state.{name}: nested too deep for a state file") from None
    # Everything is read: only now does the fake change.
    with fake._timeline.quiet(_QUIET_SECONDS):
        for name, obj in roots.items():
            kind = kinds[type(obj).__name__]
            for field, value in decoded[name].items():
                object.__setattr__(obj, field, value)
            if kind.after_load is not None:
                kind.after_load(obj)
        for after_load, made in decoder.loaded:
            after_load(made)
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
