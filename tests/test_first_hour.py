"""What users meet in their first hour: negative tests, shared fakes, sharp edges."""

from __future__ import annotations

import httpx
import pytest
import requests

from pytest_qstash_tasks import QStashTasksFake, QStashTasksMock, Task, make_tasks

from .conftest import async_client_for, client_for, in_process_only

pytest_plugins = ["pytester"]


def test_an_xfailed_test_is_not_reported_twice(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import httpx
        import pytest

        @pytest.mark.xfail(reason="known bug", strict=True)
        def test_known_bug(qstash_tasks):
            httpx.get(qstash_tasks.base_url + "/v1/messages/nope/tasks")
            assert False

        @pytest.mark.xfail(reason="fixed now", strict=True)
        def test_fixed(qstash_tasks):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "-rA")
    result.assert_outcomes(xfailed=1, failed=1)
    assert "ERROR" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*[[]XPASS(strict)[]] fixed now*"])


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


def test_reset_forgets_everything_but_the_settings(qstash_tasks: QStashTasksMock) -> None:
    qstash_tasks.add("m", count=3)
    qstash_tasks.fail_next(503)
    qstash_tasks.expect_unserved("bad_cursor")
    qstash_tasks.clock.advance(5000)
    with client_for(qstash_tasks) as client:
        client.get("/v1/messages/m/tasks")
    qstash_tasks.reset()
    assert (qstash_tasks.calls, qstash_tasks.faults, qstash_tasks.problems()) == ([], [], [])
    assert qstash_tasks.clock.now == qstash_tasks.clock.start
    assert qstash_tasks.page_size == 100


def test_a_second_fake_on_the_same_host_is_refused_naming_both() -> None:
    with QStashTasksMock() as first:
        second = QStashTasksMock(base_url="https://qstash.upstash.io/prefix")
        with pytest.raises(RuntimeError) as refused:
            second.start()
        assert str(refused.value) == (
            f"{second!r} cannot start: {first!r} already answers https://qstash.upstash.io "
            "in this process, and only one fake can. Stop it first, or give one of them "
            "another base_url."
        )
        with QStashTasksMock(base_url="https://qstash-us-east-1.upstash.io"):
            pass  # another host is fine
    with second:
        pass  # and the first one gone, the second may start


def test_hand_made_fakes_say_how_to_switch_a_check_by_constructor() -> None:
    fake = QStashTasksMock()
    with pytest.raises(AssertionError) as failed, fake:
        httpx.get(fake.base_url + "/v1/messages/nope/tasks", headers={"Authorization": "Bearer t"})
    assert (
        "turn this check off with QStashTasksMock(assert_all_requests_served=False) or "
        "fake.assert_all_requests_served = False)"
    ) in str(failed.value)
    assert "@pytest.mark" not in str(failed.value)


def test_hand_made_fakes_hold_the_same_data_whichever_test_comes_first() -> None:
    first = QStashTasksMock().add("m", count=3)
    again = QStashTasksMock().add("m", count=3)
    assert [t.task_id for t in first] == [t.task_id for t in again]
    assert [t.task_id for t in QStashTasksMock(seed=7).add("m", count=3)] != [
        t.task_id for t in first
    ]
    # seed=None: the running test's own stream, as the fixtures do.
    assert QStashTasksMock(seed=None).add("m", count=1) != first[:1]


def test_tasks_read_back_from_the_wire_equal_the_stored_ones(any_fake: QStashTasksFake) -> None:
    stored = any_fake.add("m", count=5)
    with client_for(any_fake) as client:
        wire = [Task.model_validate(t) for t in client.get("/v1/messages/m/tasks").json()["tasks"]]
    assert wire == stored
    assert set(wire) == set(stored)
    assert all(task.timeline_at is None for task in wire)
    assert "timeline_at" not in repr(stored[0])
    assert stored[0] != stored[0].model_copy(update={"retried": 1})


@in_process_only
def test_a_delay_past_the_read_timeout_is_a_read_timeout(any_fake: QStashTasksFake) -> None:
    any_fake.add("m", count=1)
    any_fake.delay_next(5, times=2)
    url = any_fake.base_url + "/v1/messages/m/tasks"
    auth = {"Authorization": "Bearer t"}
    with pytest.raises(httpx.ReadTimeout, match=r"past the client's read timeout of 0\.05 s"):
        httpx.get(url, headers=auth, timeout=httpx.Timeout(10, read=0.05))
    with pytest.raises(requests.ReadTimeout, match="held back 5 s"):
        requests.get(url, headers=auth, timeout=(10, 0.05))
    assert [call.action for call in any_fake.calls] == ["hold", "hold"]
    assert httpx.get(url, headers=auth, timeout=0.05).status_code == 200  # no delay left


@in_process_only
@pytest.mark.asyncio
async def test_a_delay_past_the_read_timeout_async(any_fake: QStashTasksFake) -> None:
    any_fake.add("m", count=1)
    any_fake.delay_next(0.02)
    async with async_client_for(any_fake) as client:
        assert (await client.get("/v1/messages/m/tasks", timeout=1)).status_code == 200
        any_fake.delay_next(5)
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/v1/messages/m/tasks", timeout=0.05)


def test_the_seed_section_shows_only_when_generated_data_was_drawn(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        from pytest_qstash_tasks import make_tasks

        def test_no_fixture():
            assert False

        def test_fixture_no_generated_data(qstash_tasks):
            qstash_tasks.add_message("m")
            assert False

        def test_generated(qstash_tasks):
            qstash_tasks.add("m", count=2)
            assert False

        def test_make_tasks_without_fixture():
            make_tasks(2)
            assert False
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=4)
    assert result.stdout.str().count("qstash_tasks seed") == 2
    result.stdout.fnmatch_lines(
        [
            "*_ test_generated _*",
            "*- qstash_tasks seed -*",
            "generated tasks were seeded with * (reproduce with "
            "@pytest.mark.qstash_tasks(seed=*) or make_tasks(..., seed=*))",
        ]
    )


def test_make_tasks_still_draws_from_the_test_stream() -> None:
    assert make_tasks(2) != make_tasks(2)  # one stream: fresh tasks each call
