"""How the state file's objects are written and read: an allow-list of the fake's state
classes (each with the fields written, in order), an encoder that writes an object met
twice as a reference to the first, and a decoder that builds objects field by field,
never calling code the file names, and says where a file goes wrong.

``control/state_file.py`` is the file around it: its format and version, the fake's
parts it restores, the atomic write and the keeper.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import json
import random
from collections.abc import Callable
from typing import Any

__all__ = ["Decoder", "Encoder", "StateFileError", "kinds", "layout"]


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


def kinds() -> dict[str, _Kind]:
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


def layout() -> dict[str, list[str]]:
    """Each class the file may hold and the fields written of it (the layout that
    ``STATE_VERSION`` names), and the classes written by value."""
    shown = {name: list(kind.fields) for name, kind in sorted(kinds().items())}
    shown.update({name: ["(value)"] for name, _, _ in sorted(_values().values())})
    return shown


# -- writing ----------------------------------------------------------------------------


class Encoder:
    """Writes the fake's parts. An object is known by its ``id()``: every object written
    belongs to the fake, alive and unchanged while the lock is held."""

    def __init__(self) -> None:
        self.kinds = {kind.cls: kind for kind in kinds().values()}
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


class Decoder:
    """Builds the objects of a file's parts. Fast on the common path (a load is measured
    against ``json.load`` of the same file, docs/benchmarks.md): scalars are taken as
    they are without a call, and where an error is found is put together only when one
    is."""

    def __init__(self) -> None:
        self.kinds = kinds()
        self.values = {name: decode for name, _, decode in _values().values()}
        self.made: dict[int, object] = {}
        self.loaded: list[tuple[Callable[[Any], None], object]] = []
        self.decode = self._decoder()

    def part(self, name: str, cls: type, data: object) -> dict[str, Any]:
        """The decoded fields of the fake's part ``name`` (a ``cls``), not yet put in
        place; a ``StateFileError`` that says where, otherwise."""
        try:
            if not isinstance(data, dict):
                raise _Where("not an object")
            return self.fields(self.kinds[cls.__name__], data)
        except _Where as error:
            raise error.located(f"state.{name}") from None
        except RecursionError:
            raise StateFileError(f"state.{name}: nested too deep for a state file") from None

    def put(self, part: object, fields: dict[str, Any]) -> None:
        """Put a part's decoded ``fields`` in place of its own."""
        for field, value in fields.items():
            object.__setattr__(part, field, value)
        after_load = self.kinds[type(part).__name__].after_load
        if after_load is not None:
            after_load(part)

    def finish(self) -> None:
        """Make again what the objects read need made (iterators, markers)."""
        for after_load, made in self.loaded:
            after_load(made)

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

        def in_place(items: list[Any]) -> list[Any]:
            """``items`` decoded: the parsed list is ours, changed in place."""
            for index, item in enumerate(items):
                if type(item) not in scalars:
                    try:
                        items[index] = decode(item)
                    except _Where as error:
                        raise error.at(f"[{index}]") from None
            return items

        def decode(value: Any) -> Any:
            kind = type(value)
            if kind in scalars:
                return value
            if kind is list:
                return in_place(value)
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
            items = in_place(inner)  # its own errors say where, before the container's
            try:
                return container(items)
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
    # What is decoded already (a container's objects) shows as its class's name.
    # What is decoded already (a container's objects) shows as its class's name.
    text = json.dumps(value, default=lambda made: f"<{type(made).__name__}>")
    return text if len(text) <= 80 else text[:77] + "..."
