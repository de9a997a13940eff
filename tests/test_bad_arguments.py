"""Every public call refuses a bad argument with the whole message a user reads, and
stores nothing; the values at the edges of each range are accepted."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from pytest_qstash_tasks import ANY, QStashTasksFake, QStashTasksMock, backoff_ms, make_task


class NeedsTwoArguments(Exception):
    def __init__(self, first: str, second: str) -> None:
        super().__init__(first, second)


Call = Callable[[QStashTasksFake], object]
PAGES_ERROR = "is served from scripted pages; it cannot also hold stored tasks"

REFUSED: dict[str, tuple[Call, type[Exception], str]] = {
    # fail_next
    "status 399": (
        lambda f: f.fail_next(399),
        ValueError,
        "fail_next() takes an HTTP error status 400-599, got 399",
    ),
    "status 600": (
        lambda f: f.fail_next(600),
        ValueError,
        "fail_next() takes an HTTP error status 400-599, got 600",
    ),
    "status True": (
        lambda f: f.fail_next(True),
        ValueError,
        "fail_next() takes an HTTP error status 400-599, got True",
    ),
    "error not a str": (
        lambda f: f.fail_next(500, error=5),  # type: ignore[arg-type]
        TypeError,
        "error must be a str or None, got 5",
    ),
    "fail times 0": (
        lambda f: f.fail_next(500, times=0),
        ValueError,
        "times must be an int >= 1, got 0",
    ),
    "headers not str": (
        lambda f: f.fail_next(500, headers={"a": 1}),  # type: ignore[dict-item]
        TypeError,
        "headers must be a dict of str to str, got {'a': 1}",
    ),
    "fail delay nan": (
        lambda f: f.fail_next(500, delay=math.nan),
        ValueError,
        "delay must be a number of seconds >= 0, got nan",
    ),
    "fail delay -1": (
        lambda f: f.fail_next(500, delay=-1),
        ValueError,
        "delay must be a number of seconds >= 0, got -1",
    ),
    "fail delay as a str": (
        lambda f: f.fail_next(500, delay="1"),  # type: ignore[arg-type]
        ValueError,
        "delay must be a number of seconds >= 0, got '1'",
    ),
    "fail delay True": (
        lambda f: f.fail_next(500, delay=True),
        ValueError,
        "delay must be a number of seconds >= 0, got True",
    ),
    "page 0": (
        lambda f: f.fail_next(500, page=0),
        ValueError,
        "page must be an int >= 1, got 0",
    ),
    "cursor -1": (
        lambda f: f.fail_next(500, cursor=-1),
        ValueError,
        "cursor must be an int >= 0, None (the first page) or ANY, got -1",
    ),
    "cursor True": (
        lambda f: f.fail_next(500, cursor=True),
        ValueError,
        "cursor must be an int >= 0, None (the first page) or ANY, got True",
    ),
    "cursor str": (
        lambda f: f.fail_next(500, cursor="5"),  # type: ignore[arg-type]
        ValueError,
        "cursor must be an int >= 0, None (the first page) or ANY, got '5'",
    ),
    "fault message_id empty": (
        lambda f: f.fail_next(500, message_id=""),
        ValueError,
        "message_id must be a non-empty str, got ''",
    ),
    "fault message_id slash": (
        lambda f: f.fail_next(500, message_id="a/b"),
        ValueError,
        "message_id cannot contain '/': 'a/b'",
    ),
    # rate_limit_next
    "remaining -1": (
        lambda f: f.rate_limit_next(remaining=-1),
        ValueError,
        "remaining must be an int >= 0, got -1",
    ),
    "limit -1": (
        lambda f: f.rate_limit_next(limit=-1),
        ValueError,
        "limit must be an int >= 0, got -1",
    ),
    "reset -1": (
        lambda f: f.rate_limit_next(reset=-1),
        ValueError,
        "reset must be an int >= 0, got -1",
    ),
    "rate limit times 0": (
        lambda f: f.rate_limit_next(times=0),
        ValueError,
        "times must be an int >= 1, got 0",
    ),
    "rate limit delay inf": (
        lambda f: f.rate_limit_next(delay=math.inf),
        ValueError,
        "delay must be a number of seconds >= 0, got inf",
    ),
    # raise_next
    "raise 42": (
        lambda f: f.raise_next(42),  # type: ignore[arg-type]
        TypeError,
        "raise_next() takes an exception class or instance (e.g. httpx.ConnectError), got 42",
    ),
    "raise KeyboardInterrupt": (
        lambda f: f.raise_next(KeyboardInterrupt),
        TypeError,
        "raise_next() takes an exception class or instance (e.g. httpx.ConnectError), "
        "got <class 'KeyboardInterrupt'>",
    ),
    "raise a class that needs two arguments": (
        lambda f: f.raise_next(NeedsTwoArguments),
        TypeError,
        "raise_next() could not build NeedsTwoArguments('NeedsTwoArguments injected by "
        "qstash_tasks.raise_next()'): NeedsTwoArguments.__init__() missing 1 required "
        "positional argument: 'second'; pass an instance instead",
    ),
    "raise times 0": (
        lambda f: f.raise_next(httpx.ConnectError, times=0),
        ValueError,
        "times must be an int >= 1, got 0",
    ),
    "raise delay -1": (
        lambda f: f.raise_next(httpx.ConnectError, delay=-1),
        ValueError,
        "delay must be a number of seconds >= 0, got -1",
    ),
    # delay_next
    "delay 0": (lambda f: f.delay_next(0), ValueError, "delay_next() takes seconds > 0, got 0"),
    "delay nan": (
        lambda f: f.delay_next(math.nan),
        ValueError,
        "delay_next() takes seconds > 0, got nan",
    ),
    "delay as a str": (
        lambda f: f.delay_next("1"),  # type: ignore[arg-type]
        ValueError,
        "delay_next() takes seconds > 0, got '1'",
    ),
    "delay times 0": (
        lambda f: f.delay_next(1, times=0),
        ValueError,
        "times must be an int >= 1, got 0",
    ),
    # add, add_message, add_pages, simulate_delivery
    "count -1": (lambda f: f.add("m", count=-1), ValueError, "count must be an int >= 0, got -1"),
    "add to ''": (
        lambda f: f.add("", count=1),
        ValueError,
        "a message id must be a non-empty str, got ''",
    ),
    "add to a/b": (
        lambda f: f.add("a/b", count=1),
        ValueError,
        "a message id cannot contain '/': 'a/b'",
    ),
    "add_message 5": (
        lambda f: f.add_message(5),  # type: ignore[arg-type]
        ValueError,
        "a message id must be a non-empty str, got 5",
    ),
    "add_pages a/b": (
        lambda f: f.add_pages("a/b", [{"tasks": []}]),
        ValueError,
        "a message id cannot contain '/': 'a/b'",
    ),
    "simulate a/b": (
        lambda f: f.simulate_delivery("a/b", url="u", outcomes=[200]),
        ValueError,
        "a message id cannot contain '/': 'a/b'",
    ),
    "outcome 99": (
        lambda f: f.simulate_delivery("m", url="u", outcomes=[99]),
        ValueError,
        "an outcome status must be 100-599, got 99",
    ),
    "outcome 600": (
        lambda f: f.simulate_delivery("m", url="u", outcomes=[600]),
        ValueError,
        "an outcome status must be 100-599, got 600",
    ),
    "no outcomes": (
        lambda f: f.simulate_delivery("m", url="u", outcomes=[]),
        ValueError,
        "outcomes cannot be empty: give at least one, e.g. [200]",
    ),
    "outcomes a str": (
        lambda f: f.simulate_delivery("m", url="u", outcomes="500"),
        TypeError,
        "outcomes must be a list, e.g. [500, 500, 200]; got '500'",
    ),
    "outcomes a tuple of bytes": (
        lambda f: f.simulate_delivery("m", url="u", outcomes=b"500"),  # type: ignore[arg-type]
        TypeError,
        "outcomes must be a list, e.g. [500, 500, 200]; got b'500'",
    ),
    "empty error text": (
        lambda f: f.simulate_delivery("m", url="u", outcomes=[""]),
        ValueError,
        "an outcome's error text cannot be empty",
    ),
    "outcomes after delivery": (
        lambda f: f.simulate_delivery("m", url="u", outcomes=[500, 200, 200, 200]),
        ValueError,
        "outcomes [500, 200, 200, 200]: the task is delivered at attempt 2, "
        "so the 2 outcome(s) after it would never be used",
    ),
    "outcomes after failure": (
        lambda f: f.simulate_delivery("m", url="u", outcomes=[500, 500, 500], max_retry=1),
        ValueError,
        "outcomes [500, 500, 500]: the task fails (max_retry=1) at attempt 2, "
        "so the 1 outcome(s) after it would never be used",
    ),
    "outcomes run out": (
        lambda f: f.simulate_delivery("m", url="u", outcomes=[500, 500], max_retry=2),
        ValueError,
        "outcomes [500, 500] run out while a retry is still due (attempt 2 failed, "
        "max_retry=2): end them with a 2xx, or give 3 attempts in all for a failed task",
    ),
    # scripted pages
    "two pages hand out one cursor": (
        lambda f: f.add_pages(
            "m", [{"tasks": [], "cursor": 5}, {"tasks": [], "cursor": 5}, {"tasks": []}]
        ),
        ValueError,
        "pages 1 and 2 of 'm' both hand out cursor 5; each must lead to one page",
    ),
    "pages after the end": (
        lambda f: f.add_pages("m", [{"tasks": [], "cursor": 0}, {"tasks": []}, {"tasks": []}]),
        ValueError,
        "page 1 of 'm' ends the list (cursor 0), so the 2 page(s) after it could never be "
        "requested",
    ),
    "a page after the end": (
        lambda f: f.add_pages("m", [{"tasks": [], "cursor": 7}, {"tasks": []}, {"tasks": []}]),
        ValueError,
        "page 2 of 'm' ends the list (cursor None), so the 1 page(s) after it could never be "
        "requested",
    ),
    "the last page leads nowhere": (
        lambda f: f.add_pages("m", [{"tasks": [], "cursor": 5}]),
        ValueError,
        "the last page of 'm' hands out cursor 5, which leads nowhere; end it with cursor=0 "
        "or cursor=None",
    ),
    "scripted after stored": (
        lambda f: (f.add("m", count=1), f.add_pages("m", [{"tasks": []}])),
        ValueError,
        "message 'm' already holds stored tasks; scripted pages would hide them",
    ),
    "scripted twice": (
        lambda f: (f.add_pages("m", [{"tasks": []}]), f.add_pages("m", [{"tasks": []}])),
        ValueError,
        "message 'm' already has scripted pages",
    ),
    "add after scripted": (
        lambda f: (f.add_pages("m", [{"tasks": []}]), f.add("m", count=1)),
        ValueError,
        f"message 'm' {PAGES_ERROR}",
    ),
    "add_message after scripted": (
        lambda f: (f.add_pages("m", [{"tasks": []}]), f.add_message("m")),
        ValueError,
        f"message 'm' {PAGES_ERROR}",
    ),
    "simulate after scripted": (
        lambda f: (
            f.add_pages("m", [{"tasks": []}]),
            f.simulate_delivery("m", url="u", outcomes=[200]),
        ),
        ValueError,
        f"message 'm' {PAGES_ERROR}",
    ),
    "one task id twice": (
        lambda f: f.add(
            "m", [make_task(message_id="m", task_id="t"), make_task(message_id="m", task_id="t")]
        ),
        ValueError,
        "message 'm' already has a task 't'; task ids are unique within a message",
    ),
    "one task id simulated twice": (
        lambda f: [f.simulate_delivery("m", url="u", outcomes=[200], task_id="t") for _ in "12"],
        ValueError,
        "message 'm' already has a task 't'; task ids are unique within a message",
    ),
    "one task id added twice to a registered message": (
        lambda f: (
            f.add_message("m"),
            [f.add("m", [make_task(message_id="m", task_id="t")]) for _ in "12"],
        ),
        ValueError,
        "message 'm' already has a task 't'; task ids are unique within a message",
    ),
    "a task of another message": (
        lambda f: f.add("m", [make_task(message_id="other", task_id="t")]),
        ValueError,
        "task 't' belongs to message 'other', not 'm'",
    ),
    # the clock
    "advance -1": (
        lambda f: f.clock.advance(-1),
        ValueError,
        "the clock only moves forward; advance(-1) goes back",
    ),
    "sleep nan": (
        lambda f: f.clock.sleep(math.nan),
        ValueError,
        "sleep() takes a finite number of seconds >= 0, got nan",
    ),
    "set a naive datetime": (
        lambda f: f.clock.set(dt.datetime(2026, 1, 1)),
        ValueError,
        "use an aware datetime (e.g. tzinfo=timezone.utc)",
    ),
    "set a time without a zone": (
        lambda f: f.clock.set("2026-01-01T00:00:00"),
        ValueError,
        "'2026-01-01T00:00:00' has no time zone: give one, e.g. 2026-01-01T00:00:00Z",
    ),
    "set words": (
        lambda f: f.clock.set("yesterday"),
        ValueError,
        "'yesterday' is not an ISO 8601 time, e.g. 2026-01-01T00:00:00Z",
    ),
    "set True": (
        lambda f: f.clock.set(True),
        TypeError,
        "a timestamp must be unix milliseconds (int), a datetime or an ISO 8601 str, got True",
    ),
    "set 1.5": (
        lambda f: f.clock.set(1.5),  # type: ignore[arg-type]
        TypeError,
        "a timestamp must be unix milliseconds (int), a datetime or an ISO 8601 str, got 1.5",
    ),
    "set -1": (lambda f: f.clock.set(-1), ValueError, "a timestamp must be >= 0 ms, got -1"),
    "backoff -1": (lambda f: backoff_ms(-1), ValueError, "retried must be an int >= 0, got -1"),
    "backoff '1'": (
        lambda f: backoff_ms("1"),  # type: ignore[arg-type]
        ValueError,
        "retried must be an int >= 0, got '1'",
    ),
    # expectations and assertions
    "an unknown reason": (
        lambda f: f.expect_unserved("typo"),  # type: ignore[arg-type]
        ValueError,
        "expect_unserved() takes one of unknown_path, method_not_allowed, unauthorized, "
        "bad_cursor, unknown_message, unknown_cursor, bad_request, unknown_url_group; "
        "got 'typo'",
    ),
    "an expected miss of ''": (
        lambda f: f.expect_unserved("unknown_message", message_id=""),
        ValueError,
        "message_id must be a non-empty str, got ''",
    ),
    "assert_called times -1": (
        lambda f: f.assert_called(times=-1),
        ValueError,
        "times must be an int >= 0, got -1",
    ),
    "assert_published times str": (
        lambda f: f.assert_published(times="x"),  # type: ignore[arg-type]
        ValueError,
        "times must be an int >= 0, got 'x'",
    ),
    "assert_delivered times -1": (
        lambda f: f.assert_delivered(times=-1),
        ValueError,
        "times must be an int >= 0, got -1",
    ),
    "sign no URL": (
        lambda f: f.sign(b"x", ""),
        ValueError,
        "sign() takes the destination URL, got ''",
    ),
    "sign URL not a str": (
        lambda f: f.sign(b"x", 5),  # type: ignore[arg-type]
        ValueError,
        "sign() takes the destination URL, got 5",
    ),
    "assert_called cursor -1": (
        lambda f: f.assert_called(cursor=-1),
        ValueError,
        "cursor must be an int >= 0, None (the first page) or ANY, got -1",
    ),
    "get_calls cursor True": (
        lambda f: f.get_calls(cursor=True),
        ValueError,
        "cursor must be an int >= 0, None (the first page) or ANY, got True",
    ),
    # the constructor
    "token with a space": (
        lambda f: QStashTasksMock(token="a b"),
        ValueError,
        "token must be a non-empty str without spaces, or None; got 'a b'",
    ),
    "empty token": (
        lambda f: QStashTasksMock(token=""),
        ValueError,
        "token must be a non-empty str without spaces, or None; got ''",
    ),
    "page_size 0": (
        lambda f: QStashTasksMock(page_size=0),
        ValueError,
        "page_size must be an int >= 1, got 0",
    ),
    "end_cursor 1": (
        lambda f: QStashTasksMock(end_cursor=1),  # type: ignore[arg-type]
        ValueError,
        "end_cursor must be 0 or None (leave the field out), got 1",
    ),
    "base_url not a str": (
        lambda f: QStashTasksMock(base_url=5),  # type: ignore[arg-type]
        TypeError,
        "base_url must be a str, got 5",
    ),
    "default_retries -1": (
        lambda f: QStashTasksMock(default_retries=-1),
        ValueError,
        "default_retries must be an int >= 0, got -1",
    ),
    "max_message_size 0": (
        lambda f: QStashTasksMock(max_message_size=0),
        ValueError,
        "max_message_size must be an int >= 1, got 0",
    ),
    "seed -1": (
        lambda f: QStashTasksMock(seed=-1),
        ValueError,
        "seed must be an int >= 0, got -1",
    ),
    "intercept_httpx_at socket": (
        lambda f: QStashTasksMock(intercept_httpx_at="socket"),  # type: ignore[arg-type]
        ValueError,
        "intercept_httpx_at must be 'transport' or 'client', got 'socket'",
    ),
    "max_identical_requests 0": (
        lambda f: QStashTasksMock(max_identical_requests=0),
        ValueError,
        "max_identical_requests must be an int >= 1, got 0",
    ),
    "max_identical_requests set to 0": (
        lambda f: setattr(f, "max_identical_requests", 0),
        ValueError,
        "max_identical_requests must be an int >= 1, got 0",
    ),
}


@pytest.mark.parametrize(("call", "error", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_a_bad_argument_gets_its_message_and_nothing_changes(
    call: Call, error: type[Exception], message: str
) -> None:
    fake = QStashTasksMock()
    with pytest.raises(error) as raised:
        call(fake)
    assert str(raised.value) == message
    # Only what a step before the refused call stored: a message with one task or pages.
    assert fake.message_ids() in ([], ["m"])
    assert sum(len(_stored_tasks(fake, m)) for m in fake.message_ids()) <= 1
    assert fake.faults == []


def _stored_tasks(fake: QStashTasksFake, message_id: str) -> list[Any]:
    try:
        return fake.tasks(message_id)
    except KeyError:  # served from scripted pages
        return []


ACCEPTED: dict[str, Call] = {
    "status 400": lambda f: f.fail_next(400),
    "status 599": lambda f: f.fail_next(599),
    "cursor 0": lambda f: f.fail_next(500, cursor=0),
    "page 1": lambda f: f.fail_next(500, page=1),
    "no delay": lambda f: f.fail_next(500, delay=0),
    "remaining 0, limit 0, reset 0": lambda f: f.rate_limit_next(limit=0, remaining=0, reset=0),
    "an instance to raise": lambda f: f.raise_next(httpx.ConnectError("down")),
    "outcomes 100 and 599 as errors": lambda f: f.simulate_delivery(
        "m", url="u", outcomes=[100, 599, 200]
    ),
    "outcomes as a tuple": lambda f: f.simulate_delivery("m", url="u", outcomes=(500, 200)),
    "max_retry 0": lambda f: f.simulate_delivery("m", url="u", outcomes=[500], max_retry=0),
    "set the clock to now": lambda f: f.clock.set(f.clock.now),
    "a time with a Z": lambda f: f.clock.set("2030-01-01T00:00:00Z"),
    "max_identical_requests 1": lambda f: QStashTasksMock(max_identical_requests=1),
    "max_message_size 1": lambda f: QStashTasksMock(max_message_size=1),
    "a delay of a millisecond": lambda f: f.delay_next(0.001),
    "sleep 0": lambda f: f.clock.sleep(0),
    "backoff 0": lambda f: backoff_ms(0),
}


@pytest.mark.parametrize("call", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_the_values_at_the_edges_are_accepted(call: Call) -> None:
    call(QStashTasksMock())


def test_the_clock_can_start_at_the_epoch() -> None:
    assert QStashTasksMock(start=0).clock.now == 0


def test_any_cursor_reads_as_its_name() -> None:
    assert (repr(ANY), str(ANY)) == ("ANY", "ANY")


def test_a_time_with_a_z_is_utc() -> None:
    fake = QStashTasksMock()
    fake.clock.set("2030-01-01T00:00:00Z")
    assert fake.clock.now == 1_893_456_000_000


def test_an_exception_instance_is_raised_with_the_request_it_failed() -> None:
    from pytest_qstash_tasks import QStashTasksMock

    with QStashTasksMock() as fake:
        fake.add("m", count=1)
        fake.raise_next(httpx.ConnectError("down"))
        with (
            httpx.Client(base_url=fake.base_url) as client,
            pytest.raises(httpx.ConnectError) as raised,
        ):
            client.get("/v1/messages/m/tasks", headers={"Authorization": "Bearer t"})
    assert str(raised.value) == "down"
    assert raised.value.request.url == f"{fake.base_url}/v1/messages/m/tasks"


def _kinds(fake: QStashTasksFake) -> list[Any]:
    return [(fault.kind, fault.describe()) for fault in fake.faults]


def test_each_planned_fault_says_what_it_is_and_how_it_was_planned() -> None:
    fake = QStashTasksMock()
    fake.fail_next(503, times=2)
    fake.rate_limit_next()
    fake.rate_limit_next(daily=True, message_id="m")
    fake.raise_next(httpx.ConnectError("down"), cursor=None)
    fake.raise_next(httpx.ReadTimeout, page=2)
    fake.delay_next(0.5)
    assert _kinds(fake) == [
        ("fail", "fail_next(503, times=2): fired 0 of 2 time(s)"),
        ("rate_limit", "rate_limit_next(): fired 0 of 1 time(s)"),
        ("rate_limit", "rate_limit_next(daily=True, message_id='m'): fired 0 of 1 time(s)"),
        ("raise", "raise_next(ConnectError, cursor=None): fired 0 of 1 time(s)"),
        ("raise", "raise_next(ReadTimeout, page=2): fired 0 of 1 time(s)"),
        ("delay", "delay_next(0.5): fired 0 of 1 time(s)"),
    ]


@pytest.mark.parametrize(
    "register",
    [
        lambda fake, message_id: fake.add(message_id, count=1),
        lambda fake, message_id: fake.add_message(message_id),
        lambda fake, message_id: fake.add_pages(message_id, [{"tasks": []}]),
        lambda fake, message_id: fake.simulate_delivery(
            message_id, url="https://x", outcomes=[200]
        ),
    ],
    ids=["add", "add_message", "add_pages", "simulate_delivery"],
)
def test_a_message_id_that_cannot_be_in_a_path_is_refused(register: Any) -> None:
    fake = QStashTasksMock()
    with pytest.raises(ValueError, match=r"^a message id must be a non-empty str, got ''$"):
        register(fake, "")
    with pytest.raises(ValueError, match=r"^a message id cannot contain '/': 'a/b'$"):
        register(fake, "a/b")
    assert fake.message_ids() == []
