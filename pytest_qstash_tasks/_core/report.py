"""Every failure message of the fake, in one place.

Pure functions over recorded calls, faults and scripted pages: the fake hands them
what it holds, under its lock, and raises what they return.
"""

from __future__ import annotations

import datetime as _dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from .args import ANY, AnyCursor
from .engine.destinations import same_url
from .state.calls import CallLog, RecordedCall, filter_calls
from .state.faults import Fault

if TYPE_CHECKING:
    from .engine.receivers import DeliveryAttempt
    from .state.outbox import PublishedMessage
    from .state.store import ScriptedPages

__all__ = [
    "CHECKS",
    "COMMAND",
    "MAX_LISTED",
    "Waiting",
    "all_pages_fetched_problem",
    "called_problem",
    "dead_lettered_problem",
    "delivered_problem",
    "describe_filter",
    "format_calls",
    "format_problems",
    "loop_message",
    "problems",
    "published_problem",
    "real_host_message",
    "runaway_message",
    "server_problems",
    "switch_text",
    "times_text",
    "unreached_message",
]


def describe_filter(message_id: str | None, cursor: int | AnyCursor | None) -> str:
    """``requests for message 'm' with cursor=5`` and the like."""
    text = "requests" if message_id is None else f"requests for message {message_id!r}"
    if cursor is None:
        text += " without a cursor"
    elif cursor is not ANY:
        text += f" with cursor={cursor}"
    return text


def times_text(count: int) -> str:
    """``once`` or ``N times``."""
    return "once" if count == 1 else f"{count} times"


def format_calls(calls: Sequence[RecordedCall], marked: Sequence[RecordedCall] = ()) -> str:
    """The recorded calls, numbered, one a line; ``marked`` ones flagged with ``>``."""
    if not calls:
        return "Recorded calls: none."
    chosen = {id(call) for call in marked}
    lines = [f"Recorded calls ({len(calls)}):"]
    for number, call in enumerate(calls, 1):
        flag = ">" if id(call) in chosen else " "
        lines.append(f" {flag}{number:>3}. {call.describe()}")
    return "\n".join(lines)


#: How much of a receiver's answer a report shows.
_ANSWER_SHOWN = 200


def failure_sections(
    found: Sequence[str], unreached: str | None, attempts: Sequence[DeliveryAttempt]
) -> list[tuple[str, str]]:
    """What a failed test's report shows of a fake, as (title, text) sections: its
    problems, why no request may have reached it, and the delivery attempts made."""
    sections = []
    if found:
        sections.append(("qstash_tasks", format_problems(found)))
    if unreached is not None:
        sections.append(("qstash_tasks: no request reached the fake", unreached))
    if attempts:
        sections.append(("qstash_tasks: delivery attempts", format_deliveries(attempts)))
    return sections


def format_deliveries(attempts: Sequence[DeliveryAttempt]) -> str:
    """The delivery attempts, numbered, one a line: when (the fake's clock), what was
    sent, what came back, where it went; the receiver's answer on the next line."""
    lines = [f"Delivery attempts ({len(attempts)}):"]
    for number, attempt in enumerate(attempts, 1):
        lines.append(f"  {number:>3}. {_iso(attempt.at)} {attempt.describe()}, {attempt.receiver}")
        if attempt.answer_body:
            text = attempt.answer_body[:_ANSWER_SHOWN].decode("utf-8", "replace")
            cut = "..." if len(attempt.answer_body) > _ANSWER_SHOWN else ""
            lines.append(f"       answered {text!r}{cut}")
    return "\n".join(lines)


def called_problem(
    calls: Sequence[RecordedCall],
    message_id: str | None,
    times: int | None,
    cursor: int | AnyCursor | None,
    *,
    none_wanted: bool = False,
) -> str | None:
    """Why ``assert_called`` fails (at least one matching call, or exactly ``times``),
    or ``assert_not_called`` with ``none_wanted``; ``None`` when it passes."""
    matched = filter_calls(calls, message_id, cursor=cursor)
    what = describe_filter(message_id, cursor)
    if none_wanted:
        if not matched:
            return None
        expected = f"expected no {what}, got {len(matched)}."
    elif times is None and not matched:
        expected = f"expected {what} to the fake, got none."
    elif times is not None and len(matched) != times:
        expected = f"expected {what} {times_text(times)}, got {times_text(len(matched))}."
    else:
        return None
    return f"qstash_tasks: {expected}\n{format_calls(calls, matched)}"


def all_pages_fetched_problem(
    calls: Sequence[RecordedCall], message_id: str, known: Sequence[str]
) -> str | None:
    """Why ``assert_all_pages_fetched`` fails (the client did not follow
    ``message_id``'s cursors to the end), with the calls, or ``None``."""
    problem = _unwalked(calls, message_id, known)
    if problem is None:
        return None
    mine = [call for call in calls if call.message_id == message_id]
    return (
        f"qstash_tasks: expected every page of {message_id!r} to be fetched: "
        f"{problem}.\n{format_calls(calls, mine)}"
    )


def _unwalked(calls: Sequence[RecordedCall], message_id: str, known: Sequence[str]) -> str | None:
    if message_id not in known:
        listed = ", ".join(repr(k) for k in known) or "none"
        return (
            f"message {message_id!r} is not registered with the fake "
            f"(registered: {listed}), so no page of it could be fetched"
        )
    served = [c for c in calls if c.message_id == message_id and c.served]
    by_cursor: dict[int | None, RecordedCall] = {}
    for call in served:
        by_cursor.setdefault(call.cursor, call)
    if None not in by_cursor:
        return f"the first page of {message_id!r} (a request without a cursor) was never served"
    call, pages = by_cursor[None], 1
    while call.next_cursor is not None:
        following = by_cursor.get(call.next_cursor)
        if following is None:
            return (
                f"page {pages} of {message_id!r} handed out cursor={call.next_cursor}, "
                f"but no request with cursor={call.next_cursor} was served: the client "
                f"fetched {pages} page(s) and stopped before the end"
            )
        call, pages = following, pages + 1
    return None


@dataclass(frozen=True)
class Waiting:
    """What a looping client might have been waiting for: deliveries (simulated or
    published) of ``message_id`` that settle at ``unsettled`` (unix ms), on a clock at
    ``now``."""

    message_id: str | None
    now: int
    unsettled: Sequence[int]
    clock_mode: str


def loop_message(
    method: str,
    url: str,
    cursor: int | None,
    repeats: int,
    status: int,
    limit: int,
    waiting: Waiting | None = None,
    owner: str | None = None,
) -> str:
    """What the loop guard says when it stops a client (``owner``: see ``switch_text``)."""
    shown = "" if cursor is None else f" (cursor={cursor})"
    head = (
        f"likely infinite loop: {method} {url}{shown} was sent {repeats} times in a row "
        f"and got the same {status} answer each time"
    )
    tail = (
        f"(The limit is max_identical_requests={limit}; raise it with "
        f"{switch_text('max_identical_requests', '<n>' if owner == COMMAND else '...', owner)}.)"
    )
    if waiting is None or not waiting.unsettled:
        return (
            f"{head}, with nothing changed in between. A client that pages should stop "
            f"when the cursor is 0 or missing. {tail}"
        )
    return f"{head}, {_stood_still(waiting, owner)} {tail}"


def _stood_still(waiting: Waiting, owner: str | None) -> str:
    """A poller waiting on a clock that does not move: what it waits for, and the cures
    (``owner``: see ``switch_text``)."""
    count, first = len(waiting.unsettled), waiting.unsettled[0]
    seconds = (first - waiting.now) / 1000
    state = (
        f"while the fake's clock stood still at {_iso(waiting.now)} and {count} "
        f"deliver{'y' if count == 1 else 'ies'} of {waiting.message_id!r} "
        f"{'was' if count == 1 else 'were'} still under way (the next settles at "
        f"{_iso(first)}, {seconds:g} s later)."
    )
    if owner == COMMAND:
        return (
            f"{state} The fake's time moves only when something moves it: move it between "
            'polls (POST /_fake/clock {"advanceMs": ...}), or start the fake with '
            "--clock wall to follow real time."
        )
    fake, patch, wall = "qstash_tasks", "mark the test ", "use "
    marker = "@pytest.mark.qstash_tasks"
    if owner is not None:
        fake, patch, wall, marker = "fake", "build it as ", "as ", owner
    sleep = f"call {fake}.clock.sleep(seconds) where the code waits"
    if waiting.clock_mode == "wall":
        return (
            f"{state} The fake follows time.time(), which did not move: let it tick "
            "(time-machine's travel(..., tick=True), freezegun's tick=True), or move it "
            f"between polls (traveller.shift, frozen.tick), or {sleep}."
        )
    return (
        f"{state} The fake's time moves only when something moves it: {sleep}, "
        f"{patch}{marker}(patch_sleep=True) so that time.sleep, asyncio.sleep and anyio.sleep "
        f'move it, or {wall}{marker}(clock="wall") to follow time.time() (real time, '
        "time-machine, freezegun)."
    )


def _iso(ms: int) -> str:
    when = _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.timezone.utc)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def unreached_message(known: Sequence[str], base_url: str, clients: str) -> str:
    """A failed test's hint when messages were registered but no request came."""
    listed = ", ".join(repr(k) for k in known[:MAX_LISTED])
    more = f" and {len(known) - MAX_LISTED} more" if len(known) > MAX_LISTED else ""
    return (
        f"{len(known)} message(s) were registered ({listed}{more}), but no request "
        f"reached the fake at {base_url}. {clients}"
    )


#: The teardown checks a test can switch off, each a setting of the fake.
CHECKS = (
    "assert_all_requests_served",
    "assert_all_scripted_pages_requested",
    "assert_all_faults_triggered",
    "assert_all_destination_answers_used",
)


def problems(
    *,
    base_url: str,
    log: CallLog,
    scripted: Sequence[ScriptedPages],
    faults: Sequence[Fault],
    checks: dict[str, bool],
    owner: str | None = None,
    unused_answers: Sequence[tuple[str, Sequence[object]]] = (),
    receiver_errors: Sequence[str] = (),
    timeline_problems: Sequence[str] = (),
) -> list[str]:
    """What ``verify()`` reports, one paragraph each, from a snapshot of the call log;
    ``checks`` holds the switches and ``owner`` says how the fake was configured (see
    ``switch_text``)."""
    found = _log_problems(log, base_url, checks, owner)
    found += _plan_problems(log.calls, scripted, faults, checks, owner)
    found.extend(receiver_errors)  # a bug in the test's own receiver: always reported
    found.extend(timeline_problems)  # a chain that never ends, ...: always reported
    if unused_answers and checks["assert_all_destination_answers_used"]:
        found.append(
            f"{len(unused_answers)} destination(s) kept scripted answers no delivery "
            "attempt met:\n"
            + _bullets(f"{target}: {_few(answers)} left" for target, answers in unused_answers)
            + _switch("assert_all_destination_answers_used", owner)
        )
    return found


def _log_problems(
    log: CallLog, base_url: str, checks: dict[str, bool], owner: str | None
) -> list[str]:
    """What the call log shows: stops at the real host, loops, misses, unmet expectations."""
    found: list[str] = []
    if log.real_host:
        first = log.real_host[0].exception
        found.append(
            f"stopped {len(log.real_host)} request(s) to the real QStash "
            "(QStashTasksRealHostError):\n"
            + _bullets(f"{call.method} {call.url}" for call in log.real_host)
            + f"\n  {first}"
        )
    if log.loops:
        found.append(
            "stopped a likely infinite loop: the same request kept getting the same "
            "answer (QStashTasksLoopError):\n" + _bullets(c.describe() for c in log.loops)
        )
    unserved = log.unexpected_misses()
    if unserved and checks["assert_all_requests_served"]:
        found.append(
            f"{len(unserved)} request(s) to {base_url} could not be served:\n"
            + _bullets(call.describe() for call in unserved)
            + _switch("assert_all_requests_served", owner)
            + (
                ""
                if owner == COMMAND
                else "\n  (or say which are meant to miss: qstash_tasks.expect_unserved("
                "reason, message_id=...))"
            )
        )
    unmet = log.unmet_expectations()
    if unmet:
        found.append(
            f"{len(unmet)} expected unserved request(s) never came:\n"
            + _bullets(expectation.describe() for expectation in unmet)
        )
    return found


def _plan_problems(
    calls: Sequence[RecordedCall],
    scripted: Sequence[ScriptedPages],
    faults: Sequence[Fault],
    checks: dict[str, bool],
    owner: str | None,
) -> list[str]:
    """What the test planned and nothing met: scripted pages, faults."""
    found: list[str] = []
    unrequested = _unrequested_pages(calls, scripted)
    if unrequested and checks["assert_all_scripted_pages_requested"]:
        found.append(
            f"{len(unrequested)} scripted page(s) were never requested:\n"
            + _bullets(unrequested)
            + _switch("assert_all_scripted_pages_requested", owner)
        )
    unfired = [fault for fault in faults if fault.fired < fault.times]
    if unfired and checks["assert_all_faults_triggered"]:
        found.append(
            f"{len(unfired)} fault(s) did not fire as often as planned:\n"
            + _bullets(fault.describe() for fault in unfired)
            + _switch("assert_all_faults_triggered", owner)
        )
    return found


#: How many of a destination's unused answers a report lists before it counts the rest.
_ANSWERS_SHOWN = 20


def _few(answers: Sequence[object]) -> str:
    """The answers, the first twenty of them and a count of the rest when there are more."""
    if len(answers) <= _ANSWERS_SHOWN:
        return repr(list(answers))
    shown = ", ".join(repr(answer) for answer in answers[:_ANSWERS_SHOWN])
    return f"[{shown}, ... and {len(answers) - _ANSWERS_SHOWN} more]"


def delivered_problem(
    attempts: Sequence[DeliveryAttempt],
    url: str | None,
    message_id: str | None,
    status: int | None,
    times: int | None,
) -> tuple[list[DeliveryAttempt], str | None]:
    """The attempts that match, and what ``assert_delivered`` reports (None: passed)."""
    found = [
        a
        for a in attempts
        if (url is None or same_url(a.url, url))
        and (message_id is None or a.message_id == message_id)
        and (status is None or a.status == status)
    ]
    if (times is None and found) or len(found) == times:
        return found, None
    parts = [
        f"{name}={value!r}"
        for name, value in (("url", url), ("message_id", message_id), ("status", status))
        if value is not None
    ]
    seen = (
        "no attempt reached a receiver (deliver_to), or the clock has not reached them"
        if not attempts
        else f"{len(attempts)} attempt(s) reached a receiver:\n"
        + _bullets(attempt.describe() for attempt in attempts)
    )
    return found, _count_problem("delivery attempt", parts, times, len(found), seen)


def published_problem(
    published: Sequence[PublishedMessage],
    destination: str | None,
    times: int | None,
    json_body: object,
    body: bytes | str | None,
    headers: Mapping[str, str] | None,
    *,
    json_given: bool,
) -> tuple[list[PublishedMessage], str | None]:
    """The publishes that match, and what ``assert_published`` reports (None: passed)."""
    wanted = {name.lower(): value for name, value in (headers or {}).items()}
    raw = body.encode() if isinstance(body, str) else body

    def matches(record: PublishedMessage) -> bool:
        if destination is not None and not same_url(record.destination, destination):
            return False
        if raw is not None and record.body != raw:
            return False
        if any(record.header(name) != value for name, value in wanted.items()):
            return False
        if json_given:
            try:
                return bool(record.json() == json_body)
            except ValueError:
                return False
        return True

    found = [record for record in published if matches(record)]
    if (times is None and found) or len(found) == times:
        return found, None
    parts = [f"destination={destination!r}"] if destination is not None else []
    if json_given:
        parts.append(f"json={json_body!r}")
    if raw is not None:
        parts.append(f"body={raw!r}")
    if wanted:
        parts.append(f"headers={dict(wanted)!r}")
    seen = (
        "no publish reached the fake"
        if not published
        else f"the fake received {len(published)} publish(es):\n"
        + _bullets(record.describe() for record in published)
    )
    return found, _count_problem("publish", parts, times, len(found), seen)


class _Entry(Protocol):
    """What an assertion's failure lists of a record: where it went, its message, a line."""

    @property
    def url(self) -> str: ...

    @property
    def message_id(self) -> str: ...

    def describe(self) -> str: ...


_E = TypeVar("_E", bound=_Entry)


def dead_lettered_problem(
    entries: Sequence[_E], url: str | None, message_id: str | None, times: int | None
) -> tuple[list[_E], str | None]:
    """The DLQ entries that match, and what ``assert_dead_lettered`` reports."""
    found = [
        entry
        for entry in entries
        if (url is None or same_url(entry.url, url))
        and (message_id is None or entry.message_id == message_id)
    ]
    if (times is None and found) or len(found) == times:
        return found, None
    parts = [
        f"{name}={value!r}"
        for name, value in (("url", url), ("message_id", message_id))
        if value is not None
    ]
    seen = (
        "the DLQ is empty (a message lands there once its retries run out, when the clock "
        "reaches its last attempt)"
        if not entries
        else f"the DLQ holds {len(entries)} message(s):\n"
        + _bullets(entry.describe() for entry in entries)
    )
    return found, _count_problem("dead-lettered message", parts, times, len(found), seen)


def _count_problem(
    what: str, filters: Sequence[str], times: int | None, found: int, seen: str
) -> str:
    """``expected a <what> with <filters> <how often>, got <found>; <what came>``."""
    matching = what + (f" with {', '.join(filters)}" if filters else "")
    expected = "at least once" if times is None else times_text(times)
    return f"expected a {matching} {expected}, got {times_text(found)}; {seen}"


def server_problems(
    internal_errors: Sequence[str], stray: Sequence[str], base_url: str
) -> list[str]:
    """What a server fake reports besides the fake's own problems: requests it failed
    to answer (a bug here), and requests that came while no test held the server."""
    found = []
    if internal_errors:
        found.append(
            f"the server failed to answer {len(internal_errors)} request(s) (a bug in "
            "pytest-qstash-tasks, please report it):\n" + _bullets(internal_errors)
        )
    if stray:
        found.append(
            f"{len(stray)} request(s) reached {base_url} while no test held the server, "
            "before this test started, and got 503 (a client an earlier test left "
            "running?):\n" + _bullets(stray)
        )
    return found


def real_host_message(
    what: str, host: str, base_url: str, switch_off: str, unseen_by: str | None = None
) -> str:
    """What a request (``what``: ``GET <url>``, or ``a connection to <host>``) to the
    real QStash is told, and what the test reports; ``switch_off`` says how to turn the
    guard off. ``unseen_by``: the fake answers that very host in this process, for the
    clients it names, and this client is not one of them."""
    head = f"{what} was stopped before it reached the real QStash ({host}): "
    tail = f" (To let such requests through, use {switch_off}.)"
    if unseen_by is not None:
        return (
            f"{head}this test's fake answers {base_url} in this process, but only for the "
            f"clients it intercepts, and this one is not among them. {unseen_by}{tail}"
        )
    return (
        f"{head}while this test's fake is active it answers at {base_url}, not at {host}. "
        "Point the client at the fake: create it after the fixture starts with "
        f"QSTASH_URL={base_url} set (the official SDK reads QSTASH_URL when the client "
        f"is created), or pass the fake's base_url (QStash(token, base_url=...)).{tail}"
    )


def format_problems(found: Sequence[str]) -> str:
    """The one failure message for ``found``: a header, then each, numbered."""
    head = f"qstash_tasks found {len(found)} problem(s):"
    return "\n\n".join([head, *(f"{n}. {text}" for n, text in enumerate(found, 1))])


def _unrequested_pages(
    calls: Sequence[RecordedCall], scripted: Sequence[ScriptedPages]
) -> list[str]:
    requested = {
        (call.message_id, call.scripted_page)
        for call in calls
        if call.scripted_page is not None and call.served
    }
    lines = []
    for pages in scripted:
        for number in range(1, len(pages.pages) + 1):
            if (pages.message_id, number) in requested:
                continue
            how = (
                "without a cursor"
                if number == 1
                else f"with cursor={pages.pages[number - 2].cursor}"
            )
            lines.append(
                f"page {number} of {len(pages.pages)} of {pages.message_id!r} (asked for {how})"
            )
    return lines


#: How many lines of one kind a report lists before it says how many more there are.
MAX_LISTED = 20


def _bullets(lines: Iterable[str]) -> str:
    listed = [f"  - {line}" for line in lines]
    if len(listed) > MAX_LISTED:
        listed[MAX_LISTED:] = [f"  ... and {len(listed) - MAX_LISTED} more"]
    return "\n".join(listed)


def _switch(option: str, owner: str | None) -> str:
    if owner == COMMAND:
        return (
            "\n  (the standalone fake only lists this: nothing fails; POST /_fake/reset forgets it)"
        )
    return (
        "\n  (if that is what the test wants, turn this check off with "
        f"{switch_text(option, 'False', owner)})"
    )


#: The ``owner`` of a fake the standalone command runs: its advice names command-line
#: options and control endpoints, never Python.
COMMAND = "qstash-tasks-fake"


def runaway_message(
    chain: Sequence[tuple[str, str]], bound: int, stopped_at: int, owner: str | None
) -> str:
    """A runaway chain's report: the events a move ran that it had scheduled itself, as
    (destination, message id), their destinations and ids, and how to allow more."""
    destinations = Counter(destination for destination, _ in chain)
    ids = list(dict.fromkeys(message_id for _, message_id in chain))
    shown = ", ".join(ids[:3]) + (f", ... {ids[-1]}" if len(ids) > 3 else "")
    lines = [
        f"A runaway chain: one move of the clock ran {bound} events that were scheduled "
        f"during that same move, and stopped at {_iso(stopped_at)} with the rest still "
        "due. A receiver that publishes again on every delivery never lets time rest. "
        "The chain went to:"
    ]
    lines += [f"  {url}: {count} attempt(s)" for url, count in destinations.most_common(5)]
    if len(destinations) > 5:
        lines.append(f"  ... and {len(destinations) - 5} other destination(s)")
    lines.append(f"Its {len(ids)} message(s): {shown}.")
    lines.append(
        "(A chain meant to be this long: raise the bound with "
        f"{switch_text('max_chained_events', '<n>' if owner == COMMAND else '...', owner)}.)"
    )
    return "\n".join(lines)


def switch_text(option: str, value: str, owner: str | None) -> str:
    """How to set ``option``: the marker and ini option for a fixture's fake (``owner``
    None), the command's option for the standalone fake (``COMMAND``), the constructor
    argument and attribute for a hand-made one (its class name)."""
    if owner == COMMAND:
        return f"--{option.replace('_', '-')} {value}"
    if owner is None:
        return (
            f"@pytest.mark.qstash_tasks({option}={value}) or the ini option "
            f"qstash_tasks_{option} = {value.lower()}"
        )
    return f"{owner}({option}={value}) or fake.{option} = {value}"
