"""In-test assertions on recorded calls, and the teardown checks, in the user's words."""

from __future__ import annotations

import re

import pytest

from pytest_qstash_tasks import QStashTasksFake, QStashTasksMock, make_pages, make_tasks
from tests.helpers import client_for, walk


def test_get_calls_filters(any_fake: QStashTasksFake) -> None:
    any_fake.add("msg_1", count=150, timeline_at=lambda i: 10_000 - i)
    any_fake.add("msg_2", count=3)
    with client_for(any_fake) as client:
        walk(client, "msg_1")
        walk(client, "msg_2")
        client.get("/v1/messages/msg_3/tasks")
    assert len(any_fake.get_calls()) == 4
    assert [c.cursor for c in any_fake.get_calls("msg_1")] == [None, 9_900]
    assert [c.message_id for c in any_fake.get_calls(cursor=None)] == [
        "msg_1",
        "msg_2",
        "msg_3",
    ]
    assert [c.message_id for c in any_fake.get_calls(status=404)] == ["msg_3"]
    assert len(any_fake.get_calls(served=True)) == 3
    assert any_fake.get_calls("msg_1", cursor=9_900)[0].task_count == 50
    any_fake.assert_called("msg_1", times=2)
    any_fake.assert_called("msg_1", cursor=9_900, times=1)
    any_fake.assert_called()
    any_fake.assert_not_called("msg_4")
    any_fake.assert_all_pages_fetched("msg_1")
    any_fake.assert_all_pages_fetched("msg_2")
    any_fake.assert_called("msg_3")
    any_fake.assert_all_requests_served = False  # msg_3 is unknown on purpose


def test_assert_called_shows_what_was_expected_and_every_call(
    any_fake: QStashTasksFake,
) -> None:
    any_fake.add("msg_1", count=150, timeline_at=lambda i: 10_000 - i)
    with client_for(any_fake) as client:
        walk(client, "msg_1")
    with pytest.raises(AssertionError) as caught:
        any_fake.assert_called("msg_1", cursor=9_900, times=2)
    assert str(caught.value) == (
        "qstash_tasks: expected requests for message 'msg_1' with cursor=9900 2 times, got once.\n"
        "Recorded calls (2):\n"
        f"    1. GET {any_fake.base_url}/v1/messages/msg_1/tasks -> 200 (100 tasks, next cursor 9900)\n"
        f" >  2. GET {any_fake.base_url}/v1/messages/msg_1/tasks?cursor=9900 (cursor=9900) "
        "-> 200 (50 tasks, end)"
    )
    with pytest.raises(
        AssertionError,
        match=r"expected requests for message 'msg_2' to the fake, got none\.\nRecorded calls \(2\):",
    ):
        any_fake.assert_called("msg_2")
    with pytest.raises(
        AssertionError, match=r"expected requests without a cursor 3 times, got once"
    ):
        any_fake.assert_called(cursor=None, times=3)
    with pytest.raises(AssertionError, match=r"expected no requests for message 'msg_1', got 2\."):
        any_fake.assert_not_called("msg_1")
    with pytest.raises(ValueError, match="times must be an int >= 0"):
        any_fake.assert_called(times=-1)


def test_assert_not_called_on_a_quiet_fake(any_fake: QStashTasksFake) -> None:
    any_fake.assert_not_called()
    any_fake.assert_called(times=0)
    with pytest.raises(
        AssertionError, match=r"expected requests to the fake, got none\.\nRecorded calls: none\."
    ):
        any_fake.assert_called()


def test_assert_all_pages_fetched_names_the_page_where_the_client_stopped(
    any_fake: QStashTasksFake,
) -> None:
    any_fake.add("msg_1", count=250, timeline_at=lambda i: 10_000 - i)
    with pytest.raises(
        AssertionError,
        match=r"the first page of 'msg_1' \(a request without a cursor\) was never served",
    ):
        any_fake.assert_all_pages_fetched("msg_1")
    with client_for(any_fake) as client:
        client.get("/v1/messages/msg_1/tasks")
        client.get("/v1/messages/msg_1/tasks", params={"cursor": 9_900})
    with pytest.raises(AssertionError) as caught:
        any_fake.assert_all_pages_fetched("msg_1")
    message = str(caught.value)
    assert message.startswith(
        "qstash_tasks: expected every page of 'msg_1' to be fetched: page 2 of 'msg_1' handed "
        "out cursor=9800, but no request with cursor=9800 was served: the client fetched 2 "
        "page(s) and stopped before the end.\nRecorded calls (2):\n >  1. GET"
    )
    with pytest.raises(
        AssertionError,
        match=r"message 'nope' is not registered with the fake \(registered: 'msg_1'\)",
    ):
        any_fake.assert_all_pages_fetched("nope")


def test_a_failed_request_does_not_count_as_fetched(any_fake: QStashTasksFake) -> None:
    any_fake.add("msg_1", count=150, timeline_at=lambda i: 10_000 - i)
    any_fake.fail_next(503, cursor=9_900)
    with client_for(any_fake) as client:
        client.get("/v1/messages/msg_1/tasks")
        assert client.get("/v1/messages/msg_1/tasks", params={"cursor": 9_900}).status_code == 503
        with pytest.raises(AssertionError, match="no request with cursor=9900 was served"):
            any_fake.assert_all_pages_fetched("msg_1")
        client.get("/v1/messages/msg_1/tasks", params={"cursor": 9_900})
    any_fake.assert_all_pages_fetched("msg_1")


def test_scripted_pages_fetched(any_fake: QStashTasksFake) -> None:
    pages = make_pages(make_tasks(3, message_id="msg_s", seed=1), page_size=2)
    any_fake.add_pages("msg_s", pages)
    with client_for(any_fake) as client:
        walk(client, "msg_s")
    any_fake.assert_all_pages_fetched("msg_s")
    assert [c.scripted_page for c in any_fake.calls] == [1, 2]


def test_unserved_requests_record_why(any_fake: QStashTasksFake) -> None:
    any_fake.assert_all_requests_served = False
    any_fake.add("msg_1", count=1)
    with client_for(any_fake) as client:
        client.get("/v1/messages/msg_2/tasks")
        client.get("/v1/messages/msg_1/tasks", headers={"Authorization": "Basic x"})
        client.delete("/v1/messages/msg_1/tasks")
        client.get("/v2/nowhere")
    details = [(c.status, c.unserved_reason, c.detail) for c in any_fake.calls]
    assert details == [
        (404, "unknown_message", "message 'msg_2' is not registered; registered: 'msg_1'"),
        (401, "unauthorized", "malformed Authorization header: want 'Bearer <token>'"),
        (
            405,
            "method_not_allowed",
            "DELETE is not allowed on /v1/messages/{messageId}/tasks; use GET",
        ),
        (
            404,
            "unknown_path",
            "the fake serves GET /v1/messages/{messageId}/tasks and, of the v2 message API "
            "under /v2/: publish, enqueue, batch, messages, topics, dlq, logs, events, schedules, queues, flowControl, globalParallelism, keys, workflows, wait, notify, waiters and trigger, not GET /v2/nowhere",
        ),
    ]
    assert not any(c.served for c in any_fake.calls)


TEARDOWN_TEST = """
import httpx
import pytest
from pytest_qstash_tasks import make_pages, make_tasks

{marker}
def test_it(qstash_tasks):
    qstash_tasks.add_pages("msg_s", make_pages(make_tasks(3, message_id="msg_s", seed=1), page_size=1))
    qstash_tasks.fail_next(500, times=2, message_id="msg_s", page=2)
    qstash_tasks.raise_next(httpx.ConnectError, message_id="msg_never")
    client = httpx.Client(base_url=qstash_tasks.base_url,
                          headers={{"Authorization": "Bearer t"}})
    first = client.get("/v1/messages/msg_s/tasks")
    assert first.status_code == 200
    params = {{"cursor": first.json()["cursor"]}}
    assert client.get("/v1/messages/msg_s/tasks", params=params).status_code == 500
    assert client.get("/v1/messages/unknown/tasks").status_code == 404
"""


def test_teardown_reports_every_problem_once_with_its_switch(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TEARDOWN_TEST.format(marker=""))
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_it*",
            "E*AssertionError: qstash_tasks found 3 problem(s):",
            "E*1. 1 request(s) to https://qstash.upstash.io could not be served:",
            "E*  - GET https://qstash.upstash.io/v1/messages/unknown/tasks -> 404: message "
            "'unknown' is not registered; registered: 'msg_s'",
            "E*  (if that is what the test wants, turn this check off with "
            "@pytest.mark.qstash_tasks(assert_all_requests_served=False) or the ini option "
            "qstash_tasks_assert_all_requests_served = false)",
            "E*2. 2 scripted page(s) were never requested:",
            "E*  - page 2 of 3 of 'msg_s' (asked for with cursor=*)",
            "E*  - page 3 of 3 of 'msg_s' (asked for with cursor=*)",
            "E*  (if that is what the test wants, turn this check off with "
            "@pytest.mark.qstash_tasks(assert_all_scripted_pages_requested=False) or the ini "
            "option qstash_tasks_assert_all_scripted_pages_requested = false)",
            "E*3. 2 fault(s) did not fire as often as planned:",
            "E*  - fail_next(500, times=2, message_id='msg_s', page=2): fired 1 of 2 time(s)",
            "E*  - raise_next(ConnectError, message_id='msg_never'): fired 0 of 1 time(s)",
            "E*  (if that is what the test wants, turn this check off with "
            "@pytest.mark.qstash_tasks(assert_all_faults_triggered=False) or the ini option "
            "qstash_tasks_assert_all_faults_triggered = false)",
        ]
    )


def test_each_check_is_switched_off_by_marker(pytester: pytest.Pytester) -> None:
    marker = (
        "@pytest.mark.qstash_tasks(assert_all_requests_served=False, "
        "assert_all_scripted_pages_requested=False, assert_all_faults_triggered=False)"
    )
    pytester.makepyfile(TEARDOWN_TEST.format(marker=marker))
    pytester.runpytest().assert_outcomes(passed=1)


def test_each_check_is_switched_off_by_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\n"
        "qstash_tasks_assert_all_scripted_pages_requested = false\n"
        "qstash_tasks_assert_all_faults_triggered = false\n"
    )
    pytester.makepyfile(TEARDOWN_TEST.format(marker=""))
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["E*AssertionError: qstash_tasks found 1 problem(s):"])
    assert "scripted page(s) were never requested" not in result.stdout.str()
    assert "fault(s) did not fire" not in result.stdout.str()


def test_a_failing_assertion_reads_like_pytest(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import httpx

        def test_it(qstash_tasks):
            qstash_tasks.add("msg_1", count=3)
            httpx.get(qstash_tasks.base_url + "/v1/messages/msg_1/tasks",
                      headers={"Authorization": "Bearer t"})
            qstash_tasks.assert_called("msg_1", times=2)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            '>       qstash_tasks.assert_called("msg_1", times=2)',
            "E       AssertionError: qstash_tasks: expected requests for message 'msg_1' 2 times, got once.",
            "E       Recorded calls (1):",
            "E        >  1. GET https://qstash.upstash.io/v1/messages/msg_1/tasks -> 200 (3 tasks, end)",
        ]
    )
    assert re.search(r"ERROR at teardown", result.stdout.str()) is None
    assert "_mock.py" not in result.stdout.str()  # the user's line, not the plugin's


def test_a_failing_assertion_hides_the_plugins_own_frames(pytester: pytest.Pytester) -> None:
    # What a user must not see: the lines of the plugin that raise. (Not "no plugin file
    # in the traceback": under mutmut a wrapper frame of each function shows anyway.)
    pytester.makepyfile(
        """
        def test_called(qstash_tasks):
            qstash_tasks.assert_called("msg_1")

        def test_not_called(qstash_tasks):
            qstash_tasks.add_message("msg_1")
            import httpx
            httpx.get(qstash_tasks.base_url + "/v1/messages/msg_1/tasks",
                      headers={"Authorization": "Bearer t"})
            qstash_tasks.assert_not_called("msg_1")

        def test_all_pages(qstash_tasks):
            qstash_tasks.assert_all_pages_fetched("msg_1")

        def test_published(qstash_tasks):
            qstash_tasks.assert_published("https://app.example.com/hook")

        def test_delivered(qstash_tasks):
            qstash_tasks.assert_delivered("https://app.example.com/hook")
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=5)
    assert "raise AssertionError(" not in result.stdout.str()
    assert "__tracebackhide__" not in result.stdout.str()


def test_a_failing_verify_hides_its_own_frame(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_verify(qstash_tasks):
            qstash_tasks.fail_next(500)
            qstash_tasks.verify()
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["E*AssertionError: qstash_tasks found 1 problem(s):"])
    # (Under mutmut a wrapper frame of each function shows: the raise must not.)
    assert "raise AssertionError(" not in result.stdout.str()


def test_expected_misses_are_not_reported_and_unmet_ones_are(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import httpx
        import pytest

        def get(fake, message_id, token="t"):
            return httpx.get(
                f"{fake.base_url}/v1/messages/{message_id}/tasks",
                headers={"Authorization": f"Bearer {token}"},
            )

        def test_covered(qstash_tasks):
            qstash_tasks.expect_unserved("unknown_message", message_id="gone")
            assert get(qstash_tasks, "gone").status_code == 404

        @pytest.mark.qstash_tasks(token="right")
        def test_a_401_needs_a_token(qstash_tasks):
            qstash_tasks.add_message("m")
            qstash_tasks.expect_unserved("unauthorized")
            assert get(qstash_tasks, "m", token="wrong").status_code == 401

        def test_other_misses_and_unmet_expectations(qstash_tasks):
            qstash_tasks.expect_unserved("unknown_message", message_id="gone")
            qstash_tasks.expect_unserved("bad_cursor")
            get(qstash_tasks, "other")
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "E   *AssertionError: qstash_tasks found 2 problem(s):",
            "E   *1. 1 request(s) to https://qstash.upstash.io could not be served:",
            "E   *- GET https://qstash.upstash.io/v1/messages/other/tasks -> 404: message "
            "'other' is not registered*",
            "E   *(or say which are meant to miss: qstash_tasks.expect_unserved(reason, "
            "message_id=...))",
            "E   *2. 2 expected unserved request(s) never came:",
            "E   *- expect_unserved('unknown_message', message_id='gone')",
            "E   *- expect_unserved('bad_cursor')",
        ]
    )


def test_expect_unserved_refuses_what_it_cannot_mean() -> None:
    fake = QStashTasksMock()
    with pytest.raises(ValueError, match=r"takes one of unknown_path, method_not_allowed, "):
        fake.expect_unserved("not_found")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="message_id must be a non-empty str"):
        fake.expect_unserved("unknown_message", message_id="")


def test_calls_is_a_read_only_copy_that_says_so(any_fake: QStashTasksFake) -> None:
    any_fake.add("m", count=1)
    with client_for(any_fake) as client:
        client.get("/v1/messages/m/tasks")
    calls = any_fake.calls
    assert calls == [any_fake.calls[0]]
    with pytest.raises(TypeError, match=r"calls is a copy of the recorded calls: .* reset\(\)"):
        calls.clear()
    with pytest.raises(TypeError, match="calls is a copy"):
        calls.append(calls[0])
    any_fake.reset()
    assert any_fake.calls == []
    assert any_fake.message_ids() == []


def test_all_pages_fetched_holds_when_a_cursor_was_served_twice(
    any_fake: QStashTasksFake,
) -> None:
    any_fake.add("msg_1", count=250, timeline_at=lambda i: 10_000 - i)
    with client_for(any_fake) as client:
        client.get("/v1/messages/msg_1/tasks")
        for _ in range(2):  # a retried page
            client.get("/v1/messages/msg_1/tasks", params={"cursor": 9_900})
        client.get("/v1/messages/msg_1/tasks", params={"cursor": 9_800})
    any_fake.assert_all_pages_fetched("msg_1")
    any_fake.assert_called("msg_1", times=4)
    with pytest.raises(AssertionError, match=r"expected requests for message 'msg_1' 3 times"):
        any_fake.assert_called("msg_1", times=3)  # more calls than that fail it too


def test_assert_published_and_delivered_with_no_filter_say_what_they_wanted() -> None:
    fake = QStashTasksMock()
    with pytest.raises(AssertionError) as published:
        fake.assert_published()
    assert str(published.value) == (
        "expected a publish at least once, got 0 times; no publish reached the fake"
    )
    with pytest.raises(AssertionError) as delivered:
        fake.assert_delivered()
    assert str(delivered.value) == (
        "expected a delivery attempt at least once, got 0 times; no attempt reached a receiver "
        "(deliver_to), or the clock has not reached them"
    )


def test_a_fake_s_repr_says_whether_it_runs_and_what_it_holds() -> None:
    fake = QStashTasksMock()
    assert (
        repr(fake) == "<QStashTasksMock https://qstash.upstash.io stopped, 0 message(s), 0 call(s)>"
    )
    with fake:
        fake.add("m", count=1)
        assert repr(fake) == (
            "<QStashTasksMock https://qstash.upstash.io started, 1 message(s), 0 call(s)>"
        )
        fake.assert_all_pages_fetched_on_exit = False
