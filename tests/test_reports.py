"""The whole text of what the fake reports: the teardown problems, the loop guard's
error, the hints and the recorded calls, at the edges of their counts and plurals."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import time_machine

from pytest_qstash_tasks import QStashTasksLoopError, QStashTasksMock
from tests.helpers import client_for, forget_stops, unserved

BASE = "https://qstash.upstash.io"
AUTH = {"Authorization": "Bearer t"}


@pytest.fixture
def fake() -> Iterator[QStashTasksMock]:
    started = QStashTasksMock().start()  # stopped without verify(): tests read problems()
    yield started
    started.stop()


def get(path: str, **params: object) -> httpx.Response:
    return httpx.get(f"{BASE}{path}", params=params, headers=AUTH)  # type: ignore[arg-type]


def _loop_text(fake: QStashTasksMock, path: str = "/v1/messages/m/tasks") -> str:
    """Send ``path`` as often as the fake lets it pass, then the request it stops."""
    for _ in range(fake.max_identical_requests):
        get(path)
    with pytest.raises(QStashTasksLoopError) as raised:
        get(path)
    fake.stop()
    return str(raised.value)


@pytest.mark.parametrize(("registered", "listed"), [(20, 20), (21, 20)])
def test_the_unreached_hint_lists_twenty_messages_then_counts_the_rest(
    fake: QStashTasksMock, registered: int, listed: int
) -> None:
    for number in range(registered):
        fake.add_message(f"m{number}")
    names = ", ".join(f"'m{number}'" for number in range(listed))
    more = f" and {registered - listed} more" if registered > listed else ""
    hint = fake._unreached_hint()
    assert hint is not None
    assert hint.startswith(
        f"{registered} message(s) were registered ({names}{more}), but no request reached "
        f"the fake at {BASE}. "
    )


@pytest.mark.parametrize(("requests", "shown"), [(20, 20), (22, 20)])
def test_a_problem_lists_twenty_requests_then_counts_the_rest(
    fake: QStashTasksMock, requests: int, shown: int
) -> None:
    for number in range(requests):
        get(f"/v1/messages/m{number}/tasks")
    (problem,) = fake.problems()
    lines = problem.splitlines()
    assert lines[0] == f"{requests} request(s) to {BASE} could not be served:"
    assert lines[1] == (
        f"  - GET {BASE}/v1/messages/m0/tasks -> 404: message 'm0' is not registered; "
        "no message is registered"
    )
    bullets = [line for line in lines if line.startswith("  - ")]
    assert len(bullets) == shown
    rest = [line for line in lines if line.startswith("  ... and")]
    assert rest == ([f"  ... and {requests - shown} more"] if requests > shown else [])


def test_pages_never_requested_are_named_with_the_cursor_that_leads_to_them(
    fake: QStashTasksMock,
) -> None:
    fake.assert_all_requests_served = False
    fake.add_pages(
        "m",
        [{"tasks": [], "cursor": 7}, {"tasks": [], "cursor": 5}, {"tasks": [], "cursor": 0}],
    )
    fake.add_pages("n", [{"tasks": []}])
    fake.fail_next(503, message_id="m", page=1)
    assert get("/v1/messages/m/tasks").status_code == 503  # asked for, not served
    assert get("/v1/messages/m/tasks", cursor=5).status_code == 200
    (problem,) = fake.problems()
    assert problem == (
        "3 scripted page(s) were never requested:\n"
        "  - page 1 of 3 of 'm' (asked for without a cursor)\n"
        "  - page 2 of 3 of 'm' (asked for with cursor=7)\n"
        "  - page 1 of 1 of 'n' (asked for without a cursor)\n"
        "  (if that is what the test wants, turn this check off with "
        "QStashTasksMock(assert_all_scripted_pages_requested=False) or "
        "fake.assert_all_scripted_pages_requested = False)"
    )


def test_faults_that_did_not_fire_name_how_to_turn_the_check_off(
    fake: QStashTasksMock,
) -> None:
    fake.fail_next(503, times=2)
    fake.rate_limit_next(message_id="never")
    fake.add("m", count=1)
    get("/v1/messages/m/tasks")
    (problem,) = fake.problems()
    assert problem == (
        "2 fault(s) did not fire as often as planned:\n"
        "  - fail_next(503, times=2): fired 1 of 2 time(s)\n"
        "  - rate_limit_next(message_id='never'): fired 0 of 1 time(s)\n"
        "  (if that is what the test wants, turn this check off with "
        "QStashTasksMock(assert_all_faults_triggered=False) or "
        "fake.assert_all_faults_triggered = False)"
    )


def test_a_fault_answer_is_recorded_as_the_fault_not_as_the_page() -> None:
    fake = QStashTasksMock(page_size=2).start()  # the first page of 'm' has a next cursor
    fake.add("m", count=3)
    fake.add_pages("s", [{"tasks": []}])
    fake.fail_next(503, times=3)
    for path in ("/v1/messages/m/tasks", "/v1/messages/s/tasks", "/v1/messages/unknown/tasks"):
        assert get(path).status_code == 503
    for call in fake.calls:
        assert (call.status, call.served, call.unserved_reason, call.detail) == (
            503,
            False,
            None,
            "",
        )
        assert (call.task_count, call.next_cursor, call.scripted_page) == (None, None, None)
    assert fake.calls[2].describe() == (
        f"GET {BASE}/v1/messages/unknown/tasks -> 503 [fail_next(503, times=3)]"
    )
    get("/v1/messages/s/tasks")
    fake.stop()
    fake.verify()  # the misses were the faults the test planned


def test_a_served_page_says_how_many_tasks_it_held() -> None:
    fake = QStashTasksMock(page_size=2).start()
    fake.add("m", count=3)
    fake.add_message("empty")
    first = get("/v1/messages/m/tasks").json()
    get("/v1/messages/m/tasks", cursor=first["cursor"])
    get("/v1/messages/empty/tasks")
    described = [call.describe() for call in fake.calls]
    assert described == [
        f"GET {BASE}/v1/messages/m/tasks -> 200 (2 tasks, next cursor {first['cursor']})",
        f"GET {BASE}/v1/messages/m/tasks?cursor={first['cursor']} (cursor={first['cursor']}) "
        "-> 200 (1 task, end)",
        f"GET {BASE}/v1/messages/empty/tasks -> 200 (0 tasks, end)",
    ]
    fake.stop()


def test_a_request_without_an_answer_says_how_the_client_met_it(
    fake: QStashTasksMock,
) -> None:
    fake.add("m", count=1)
    fake.raise_next(httpx.ConnectError)
    with pytest.raises(httpx.ConnectError):
        get("/v1/messages/m/tasks")
    assert fake.calls[0].describe() == (
        f"GET {BASE}/v1/messages/m/tasks raised ConnectError [raise_next(ConnectError)]"
    )


@pytest.mark.parametrize(
    ("known", "listed"), [([], "none"), (["a", "b"], "'a', 'b'")], ids=["none", "two"]
)
def test_all_pages_fetched_of_an_unknown_message_lists_the_registered_ones(
    fake: QStashTasksMock, known: list[str], listed: str
) -> None:
    for message_id in known:
        fake.add_message(message_id)
    with pytest.raises(AssertionError) as raised:
        fake.assert_all_pages_fetched("m")
    assert str(raised.value) == (
        "qstash_tasks: expected every page of 'm' to be fetched: message 'm' is not "
        f"registered with the fake (registered: {listed}), so no page of it could be "
        "fetched.\nRecorded calls: none."
    )


def test_the_loop_error_of_a_hand_made_fake_names_its_constructor() -> None:
    fake = QStashTasksMock(max_identical_requests=2).start()
    fake.add("m", count=1)
    assert _loop_text(fake) == (
        f"likely infinite loop: GET {BASE}/v1/messages/m/tasks was sent 3 times in a row "
        "and got the same 200 answer each time, with nothing changed in between. A client "
        "that pages should stop when the cursor is 0 or missing. (The limit is "
        "max_identical_requests=2; raise it with QStashTasksMock(max_identical_requests=...) "
        "or fake.max_identical_requests = ....)"
    )
    assert fake.problems()[0] == (
        "stopped a likely infinite loop: the same request kept getting the same answer "
        "(QStashTasksLoopError):\n"
        f"  - GET {BASE}/v1/messages/m/tasks raised QStashTasksLoopError"
    )


def test_a_poller_on_a_frozen_wall_clock_is_told_how_to_let_it_tick() -> None:
    with time_machine.travel("2026-01-01T00:00:00Z", tick=False):
        fake = QStashTasksMock(clock="wall", max_identical_requests=1).start()
        fake.simulate_delivery("m", url="https://example.com/a", outcomes=[200])
        fake.simulate_delivery("m", url="https://example.com/b", outcomes=[500, 500, 200])
        text = _loop_text(fake)
    assert text == (
        f"likely infinite loop: GET {BASE}/v1/messages/m/tasks was sent 2 times in a row "
        "and got the same 200 answer each time, while the fake's clock stood still at "
        "2026-01-01T00:00:00.000Z and 2 deliveries of 'm' were still under way "
        "(the next settles at 2026-01-01T00:00:00.700Z, 0.7 s later). The fake follows "
        "time.time(), which did not move: let it tick (time-machine's travel(..., "
        "tick=True), freezegun's tick=True), or move it between polls (traveller.shift, "
        "frozen.tick), or call fake.clock.sleep(seconds) where the code waits. "
        "(The limit is max_identical_requests=1; raise it with "
        "QStashTasksMock(max_identical_requests=...) or fake.max_identical_requests = ....)"
    )


def test_one_delivery_under_way_is_named_in_the_singular_with_the_constructor_cures() -> None:
    fake = QStashTasksMock(max_identical_requests=1).start()
    fake.simulate_delivery("m", url="https://example.com", outcomes=[500, 500, 200])
    fake.clock.advance(700)  # the first attempt failed: the task waits for a retry
    assert (
        "while the fake's clock stood still at 2026-01-01T00:00:00.700Z and 1 "
        "delivery of 'm' was still under way (the next settles at 2026-01-01T00:01:03.687Z, "
        "62.987 s later). The fake's time moves only when something moves it: call "
        "fake.clock.sleep(seconds) where the code waits, build it as "
        "QStashTasksMock(patch_sleep=True) so that time.sleep, asyncio.sleep and anyio.sleep "
        'move it, or as QStashTasksMock(clock="wall") to follow time.time() (real time, '
        "time-machine, freezegun)."
    ) in _loop_text(fake)


def test_a_loop_on_an_unknown_message_says_nothing_changed() -> None:
    fake = QStashTasksMock(max_identical_requests=1, assert_all_requests_served=False).start()
    fake.simulate_delivery("other", url="https://example.com", outcomes=[200])
    assert _loop_text(fake, "/v1/messages/m/tasks").startswith(
        f"likely infinite loop: GET {BASE}/v1/messages/m/tasks was sent 2 times in a row "
        "and got the same 404 answer each time, with nothing changed in between."
    )


def test_a_delivery_that_settled_this_millisecond_is_not_waited_for() -> None:
    fake = QStashTasksMock(max_identical_requests=1).start()
    fake.simulate_delivery("m", url="https://example.com", outcomes=[200], active_ms=500)
    fake.clock.advance(700)  # created + 100 planned + 100, then 500 active: delivered now
    assert ", with nothing changed in between." in _loop_text(fake)


def test_each_refused_request_records_what_the_fake_read_of_it() -> None:
    fake = QStashTasksMock(token="t", assert_all_requests_served=False).start()
    fake.add("m", count=1)
    fake.add_pages("s", [{"tasks": []}])
    bad_token = {"Authorization": "Bearer wrong"}
    answers = [
        httpx.get(f"{BASE}/v2/elsewhere", headers=AUTH),
        httpx.post(f"{BASE}/v1/messages/m/tasks", headers=AUTH),
        httpx.get(f"{BASE}/v1/messages/m/tasks", params={"cursor": 5}, headers=bad_token),
        httpx.get(f"{BASE}/v1/messages/m/tasks", params={"cursor": "x"}, headers=AUTH),
        httpx.get(f"{BASE}/v1/messages/s/tasks", params={"cursor": 5}, headers=AUTH),
        httpx.get(f"{BASE}/v1/messages/n/tasks", params={"cursor": 5}, headers=AUTH),
    ]
    fake.stop()
    read = [
        (answer.status_code, answer.json()["error"], call.message_id, call.token, call.cursor)
        for answer, call in zip(answers, fake.calls, strict=True)
    ]
    assert read == [
        (404, unserved("GET", "/v2/elsewhere"), None, None, None),
        (405, "method POST not allowed", "m", None, None),
        (401, "invalid token", "m", "wrong", None),
        (
            400,
            "invalid cursor 'x': want a unix timestamp in ms (integer >= 0)",
            "m",
            "t",
            None,
        ),
        (400, "invalid cursor 5", "s", "t", 5),
        (404, "Message not found", "n", "t", 5),
    ]
    assert [call.unserved_reason for call in fake.calls] == [
        "unknown_path",
        "method_not_allowed",
        "unauthorized",
        "bad_cursor",
        "unknown_cursor",
        "unknown_message",
    ]
    assert fake.calls[4].detail == (
        "cursor 5 is not one the scripted pages of 's' hand out (they hand out: none)"
    )


def test_a_scripted_page_hands_out_its_cursor_and_the_last_none() -> None:
    fake = QStashTasksMock().start()
    fake.add_pages("s", [{"tasks": [], "cursor": 9}, {"tasks": [], "cursor": 0}])
    first = get("/v1/messages/s/tasks")
    get("/v1/messages/s/tasks", cursor=9)
    fake.stop()
    assert first.json() == {"cursor": 9, "tasks": []}
    assert [(c.scripted_page, c.next_cursor, c.token) for c in fake.calls] == [
        (1, 9, "t"),
        (2, None, "t"),
    ]


def test_extra_spaces_after_bearer_are_read_past() -> None:
    fake = QStashTasksMock(token="t").start()
    fake.add("m", count=1)
    answer = httpx.get(f"{BASE}/v1/messages/m/tasks", headers={"Authorization": "Bearer   t "})
    fake.stop()
    assert (answer.status_code, fake.calls[0].token) == (200, "t")


def test_the_first_cursor_parameter_wins_even_when_empty() -> None:
    fake = QStashTasksMock(page_size=1).start()
    fake.add("m", count=2)
    first = get("/v1/messages/m/tasks")
    # Go's url.Values.Get: the first value, here empty, which means "no cursor".
    repeated = httpx.get(
        f"{BASE}/v1/messages/m/tasks?cursor=&cursor={first.json()['cursor']}", headers=AUTH
    )
    fake.stop()
    assert repeated.json() == first.json()
    assert fake.calls[1].cursor is None


def test_assert_not_called_lists_every_call_and_marks_the_unwanted(
    fake: QStashTasksMock,
) -> None:
    fake.add("m", count=1)
    fake.add("n", count=1)
    get("/v1/messages/n/tasks")
    get("/v1/messages/m/tasks")
    with pytest.raises(AssertionError) as raised:
        fake.assert_not_called("m")
    assert str(raised.value) == (
        "qstash_tasks: expected no requests for message 'm', got 1.\n"
        "Recorded calls (2):\n"
        f"    1. GET {BASE}/v1/messages/n/tasks -> 200 (1 task, end)\n"
        f" >  2. GET {BASE}/v1/messages/m/tasks -> 200 (1 task, end)"
    )


def test_changing_the_calls_says_they_are_a_copy(fake: QStashTasksMock) -> None:
    with pytest.raises(TypeError) as raised:
        fake.calls.clear()
    assert str(raised.value) == (
        "calls is a copy of the recorded calls: changing it changes nothing in the fake; "
        "reset() forgets every call (and everything else)"
    )


def test_a_scripted_page_whose_answer_never_arrived_is_reported() -> None:
    fake = QStashTasksMock().start()
    fake.add_pages("s", [{"tasks": []}])
    fake.delay_next(5)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{BASE}/v1/messages/s/tasks", headers=AUTH, timeout=0.05)
    fake.stop()
    assert fake.problems() == [
        "1 scripted page(s) were never requested:\n"
        "  - page 1 of 1 of 's' (asked for without a cursor)\n"
        "  (if that is what the test wants, turn this check off with "
        "QStashTasksMock(assert_all_scripted_pages_requested=False) or "
        "fake.assert_all_scripted_pages_requested = False)"
    ]


@pytest.mark.parametrize(("registered", "listed"), [(10, ""), (11, " ...")])
def test_an_unknown_message_names_ten_registered_ones(
    fake: QStashTasksMock, registered: int, listed: str
) -> None:
    for number in range(registered):
        fake.add_message(f"m{number}")
    get("/v1/messages/unknown/tasks")
    names = ", ".join(f"'m{number}'" for number in range(10))
    assert fake.calls[0].detail == (
        f"message 'unknown' is not registered; registered: {names}{listed}"
    )


@pytest.mark.parametrize("path", ["/v1/messages/m/other", "/v2/messages/m/tasks", "/v1/m/m/tasks"])
def test_a_path_that_only_looks_like_the_tasks_path_is_not_it(
    fake: QStashTasksMock, path: str
) -> None:
    fake.add("m", count=1)
    answer = get(path)
    assert (answer.status_code, answer.json()) == (404, {"error": unserved("GET", path)})
    assert (fake.calls[0].unserved_reason, fake.calls[0].message_id) == ("unknown_path", None)


def test_hand_made_fakes_say_how_to_switch_a_check_by_constructor() -> None:
    fake = QStashTasksMock()
    with pytest.raises(AssertionError) as failed, fake:
        httpx.get(fake.base_url + "/v1/messages/nope/tasks", headers={"Authorization": "Bearer t"})
    assert (
        "turn this check off with QStashTasksMock(assert_all_requests_served=False) or "
        "fake.assert_all_requests_served = False)"
    ) in str(failed.value)
    assert "@pytest.mark" not in str(failed.value)


def test_the_standalone_fake_s_reports_name_its_options_and_endpoints() -> None:
    from pytest_qstash_tasks._core.report import COMMAND

    fake = QStashTasksMock(max_identical_requests=2)
    fake._owner_name = COMMAND  # as the command makes it
    fake.add_message("m")
    fake.simulate_delivery("d", url="https://example.com/hook", outcomes=[200])
    with fake, client_for(fake) as client:
        client.get("/v1/messages/nope/tasks")
        for _ in range(2):
            client.get("/v1/messages/m/tasks")
        with pytest.raises(QStashTasksLoopError) as paging:
            client.get("/v1/messages/m/tasks")
        for _ in range(2):
            client.get("/v1/messages/d/tasks")
        with pytest.raises(QStashTasksLoopError) as polling:
            client.get("/v1/messages/d/tasks")
        problems = fake.problems()
        forget_stops(fake)
        fake.assert_all_requests_served = False
    assert str(paging.value).endswith(
        "(The limit is max_identical_requests=2; raise it with --max-identical-requests <n>.)"
    )
    assert str(polling.value).endswith(
        "The fake's time moves only when something moves it: move it between polls "
        '(POST /_fake/clock {"advanceMs": ...}), or start the fake with --clock wall to follow '
        "real time. (The limit is max_identical_requests=2; raise it with "
        "--max-identical-requests <n>.)"
    )
    assert problems[1] == (
        "1 request(s) to https://qstash.upstash.io could not be served:\n"
        "  - GET https://qstash.upstash.io/v1/messages/nope/tasks -> 404: message 'nope' is "
        "not registered; registered: 'm', 'd'\n"
        "  (the standalone fake only lists this: nothing fails; POST /_fake/reset forgets it)"
    )


def test_a_failed_test_s_report_shows_the_delivery_attempts(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import httpx

        HOOK = "https://app.example.com/hook"

        def refuse(delivery):
            return 401, '{"error": "invalid signature"}'

        def test_it(qstash_tasks):
            qstash_tasks.destination(HOOK).deliver_to(refuse)
            httpx.post(
                qstash_tasks.base_url + "/v2/publish/" + HOOK,
                headers={"Authorization": "Bearer t", "Upstash-Retries": "1"},
                content=b"{}",
            )
            qstash_tasks.clock.advance(60_000)
            assert qstash_tasks.deliveries[-1].status == 200
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=1)
    result.stdout.re_match_lines(
        [
            r".*- qstash_tasks: delivery attempts -.*",
            r"Delivery attempts \(2\):",
            r"    1\. 2026-01-01T00:00:00\.200Z POST https://app\.example\.com/hook "
            r"\(message msg_\w+, retried 0\) -> 401, the handler \w+\.refuse",
            r"""       answered '\{"error": "invalid signature"\}'""",
            r"    2\. 2026-01-01T00:00:12\.882Z POST https://app\.example\.com/hook "
            r"\(message msg_\w+, retried 1\) -> 401, the handler \w+\.refuse",
            r"""       answered '\{"error": "invalid signature"\}'""",
        ]
    )


def test_a_long_answer_is_cut_in_the_delivery_report() -> None:
    from pytest_qstash_tasks._core.engine.receivers import DeliveryAttempt
    from pytest_qstash_tasks._core.report import format_deliveries

    attempt = DeliveryAttempt(
        message_id="msg_1", url="http://127.0.0.1:9/x", method="PUT", headers=(), body=b"",
        retried=2, at=0, status=None, answer_body="é".encode() * 150, duration_ms=1.0,
        error="connection failed: refused", receiver="the server at http://127.0.0.1:9",
    )  # fmt: skip
    assert format_deliveries([attempt]) == (
        "Delivery attempts (1):\n"
        "    1. 1970-01-01T00:00:00.000Z PUT http://127.0.0.1:9/x (message msg_1, retried 2) "
        "-> connection failed: refused, the server at http://127.0.0.1:9\n"
        f"       answered {'é' * 100!r}..."
    )


def test_many_unused_destination_answers_are_listed_twenty_then_counted() -> None:
    fake = QStashTasksMock().start()
    fake.destination("https://a.example.com/hook").answers(*range(500, 525))
    fake.destination("https://b.example.com/hook").answers(*range(500, 520))
    fake.stop()
    (problem,) = fake.problems()
    twenty = ", ".join(str(status) for status in range(500, 520))
    assert problem.splitlines()[1:3] == [
        f"  - destination('https://a.example.com/hook'): [{twenty}, ... and 5 more] left",
        f"  - destination('https://b.example.com/hook'): [{twenty}] left",
    ]
