"""The plugin as users meet it: markers, ini options, teardown messages (pytester)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest_plugins = ["pytester"]

USES_FAKE = """
import httpx

def get(fake, path):
    return httpx.get(fake.base_url + path, headers={"Authorization": "Bearer t"})
"""


def test_the_marker_is_documented_and_accepted_under_strict_markers(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        ["@pytest.mark.qstash_tasks(base_url=..., token=..., page_size=..., end_cursor=..., *"]
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.qstash_tasks(page_size=5)
        def test_it(qstash_tasks):
            assert qstash_tasks.page_size == 5
        """
    )
    pytester.runpytest("--strict-markers").assert_outcomes(passed=1)


def test_markers_merge_and_the_closest_wins_per_key(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.qstash_tasks(page_size=5, token="module", end_cursor=None)

        @pytest.mark.qstash_tasks(token="class")
        class TestIt:
            @pytest.mark.qstash_tasks(page_size=7)
            def test_it(self, qstash_tasks):
                assert (qstash_tasks.page_size, qstash_tasks.token) == (7, "class")
                assert qstash_tasks.end_cursor is None

        def test_module_level(qstash_tasks):
            assert (qstash_tasks.page_size, qstash_tasks.token) == (5, "module")
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_unknown_marker_arguments_are_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.qstash_tasks(page_sise=5)
        def test_it(qstash_tasks):
            pass
        """
    )
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(
        ["*@pytest.mark.qstash_tasks got unknown argument(s) page_sise; it takes base_url, *"]
    )
    result.assert_outcomes(errors=1)


def test_two_unknown_marker_arguments_are_named_together(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.qstash_tasks(page_sise=5, tokn="t")
        def test_it(qstash_tasks):
            pass
        """
    )
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(
        ["*: @pytest.mark.qstash_tasks got unknown argument(s) page_sise, tokn; it takes *"]
    )
    result.assert_outcomes(errors=1)


def test_positional_marker_arguments_are_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_positional="""
        import pytest

        @pytest.mark.qstash_tasks(5, seed=1)
        def test_it(qstash_tasks):
            pass
        """
    )
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(
        [
            "*test_positional.py::test_it: @pytest.mark.qstash_tasks takes keyword arguments "
            "only, got positional (5,)"
        ]
    )
    result.assert_outcomes(errors=1)


def test_ini_options_set_suite_defaults_and_markers_override_them(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(
        """
        [pytest]
        qstash_tasks_base_url = http://localhost:8080
        qstash_tasks_token = from-ini
        qstash_tasks_page_size = 3
        qstash_tasks_end_cursor = omit
        qstash_tasks_start = 2030-01-01T00:00:00Z
        """
    )
    pytester.makepyfile(
        """
        import pytest

        def test_ini(qstash_tasks):
            assert qstash_tasks.base_url == "http://localhost:8080"
            assert (qstash_tasks.token, qstash_tasks.page_size) == ("from-ini", 3)
            assert qstash_tasks.end_cursor is None
            assert qstash_tasks.clock.now == 1893456000000

        @pytest.mark.qstash_tasks(page_size=9)
        def test_marker_wins(qstash_tasks):
            assert qstash_tasks.page_size == 9
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_a_bad_ini_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nqstash_tasks_page_size = many\n")
    pytester.makepyfile("def test_it(qstash_tasks): pass")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*ini option qstash_tasks_page_size = 'many': invalid literal*"])


def test_each_typed_ini_option_reaches_the_fixture_as_its_type(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(
        """
        [pytest]
        qstash_tasks_max_identical_requests = 7
        qstash_tasks_default_retries = 5
        qstash_tasks_default_answer = 503
        qstash_tasks_max_message_size = 2048
        qstash_tasks_delivery_timeout = 0.1
        qstash_tasks_end_cursor = 0
        """
    )
    pytester.makepyfile(
        """
        import re
        import time

        import httpx

        def test_it(qstash_tasks):
            fake = qstash_tasks
            settings = (
                fake.max_identical_requests, fake.default_retries, fake.default_answer,
                fake.max_message_size, fake.end_cursor,
            )
            assert settings == (7, 5, 503, 2048, 0)
            assert {type(value) for value in settings} == {int}
            hook = "https://app.example.com/hook"
            fake.destination(hook).deliver_to(lambda delivery: time.sleep(0.3) or 200)
            published = httpx.post(
                f"{fake.base_url}/v2/publish/{hook}",
                headers={"Authorization": f"Bearer {fake.token}", "Upstash-Retries": "0"},
                content=b"x",
            )
            fake.clock.advance(1_000)
            (task,) = fake.tasks(published.json()["messageId"])
            assert re.fullmatch(r"request timed out: .* past 0\\.1 s", task.error), task.error
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("text", "end_cursor"), [("0", 0), ("omit", None), ("OMIT", None), ("None", None)]
)
def test_the_ini_end_cursor_is_0_or_omit_in_any_case(
    pytester: pytest.Pytester, text: str, end_cursor: int | None
) -> None:
    pytester.makeini(f"[pytest]\nqstash_tasks_end_cursor = {text}\n")
    pytester.makepyfile(
        f"def test_it(qstash_tasks):\n    assert qstash_tasks.end_cursor == {end_cursor!r}\n"
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_an_ini_end_cursor_of_anything_else_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nqstash_tasks_end_cursor = 00\n")
    pytester.makepyfile("def test_it(qstash_tasks): pass")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(
        ["E *UsageError: ini option qstash_tasks_end_cursor = '00': want 0 or omit"]
    )
    result.assert_outcomes(errors=1)


def test_qstash_url_is_the_default_base_url(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QSTASH_URL", "http://127.0.0.1:8080")
    pytester.makepyfile(
        """
        from qstash import QStash

        def test_it(qstash_tasks):
            assert qstash_tasks.base_url == "http://127.0.0.1:8080"
            qstash_tasks.add("m", count=3)
            page = QStash("t").http.request(path="/v1/messages/m/tasks", method="GET")
            assert len(page["tasks"]) == 3
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_request_to_another_path_fails_the_test_at_teardown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        USES_FAKE
        + """
def test_it(qstash_tasks):
    qstash_tasks.add("msg_123", count=1)
    assert get(qstash_tasks, "/v2/nowhere").status_code == 404
    assert get(qstash_tasks, "/v1/messages/msg_12/tasks").status_code == 404
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_it*",
            "E*AssertionError: qstash_tasks found 1 problem(s):",
            "E*",
            "E*1. 2 request(s) to https://qstash.upstash.io could not be served:",
            "E*  - GET https://qstash.upstash.io/v2/nowhere -> 404: the fake serves "
            "GET /v1/messages/{messageId}/tasks and, of the v2 message API under /v2/: "
            "publish, enqueue, batch, messages, topics, dlq, logs, events, schedules, queues, flowControl, globalParallelism, keys, workflows, wait, notify, waiters and trigger, not GET /v2/nowhere",
            "E*  - GET https://qstash.upstash.io/v1/messages/msg_12/tasks -> 404: message 'msg_12' "
            "is not registered; registered: 'msg_123'",
            "E*  (if that is what the test wants, turn this check off with "
            "@pytest.mark.qstash_tasks(assert_all_requests_served=False) or the ini option "
            "qstash_tasks_assert_all_requests_served = false)",
        ]
    )


def test_the_check_can_be_turned_off(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nqstash_tasks_assert_all_requests_served = false\n")
    pytester.makepyfile(
        USES_FAKE
        + """
def test_it(qstash_tasks):
    assert get(qstash_tasks, "/v1/messages/nope/tasks").status_code == 404
"""
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_failed_test_shows_what_the_fake_saw_and_the_seed_not_a_second_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        USES_FAKE
        + """
def test_it(qstash_tasks):
    qstash_tasks.add("msg_123", count=5)
    get(qstash_tasks, "/v1/messages/msg_321/tasks")
    assert False, "the report was wrong"
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- qstash_tasks -*",
            "qstash_tasks found 1 problem(s):",
            "",
            "1. 1 request(s) to https://qstash.upstash.io could not be served:",
            "  - GET https://qstash.upstash.io/v1/messages/msg_321/tasks -> 404: message "
            "'msg_321' is not registered; registered: 'msg_123'",
            "*- qstash_tasks seed -*",
            "generated tasks were seeded with * (reproduce with "
            "@pytest.mark.qstash_tasks(seed=*) or make_tasks(..., seed=*))",
        ]
    )
    assert "ERROR at teardown" not in result.stdout.str()


def test_a_loop_fails_the_test_even_when_the_client_swallows_exceptions(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        USES_FAKE
        + """
def test_it(qstash_tasks):
    qstash_tasks.add_message("m")
    while True:
        try:
            get(qstash_tasks, "/v1/messages/m/tasks?cursor=0")
        except Exception:
            pass
"""
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E*QStashTasksLoopError: likely infinite loop: GET https://qstash.upstash.io/v1/messages/m/tasks?cursor=0 "
            "(cursor=0) was sent 101 times in a row and got the same 200 answer each time, *",
        ]
    )


def test_seeds_come_from_the_node_id_and_the_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pathlib import Path
        from pytest_qstash_tasks import make_tasks

        def keep(name, *tasks):
            Path(name).write_text(" ".join(t.task_id for t in tasks))

        def test_a(qstash_tasks):
            keep("A", make_tasks(2)[0], qstash_tasks.add("m", count=1)[0])

        def test_b():
            keep("B", make_tasks(2)[0])

        @pytest.mark.qstash_tasks(seed=42)
        def test_c(qstash_tasks):
            keep("C", make_tasks(2)[0])

        @pytest.mark.qstash_tasks(seed=42)
        def test_d(qstash_tasks):
            keep("D", make_tasks(2)[0])
        """
    )

    def ids(*args: str) -> dict[str, str]:
        pytester.runpytest_subprocess(*args).assert_outcomes(passed=4)
        return {name: (pytester.path / name).read_text() for name in "ABCD"}

    first = ids("-p", "no:randomly")
    assert ids("-p", "randomly") == first
    assert ids("-p", "no:randomly", "-n", "2") == first
    assert first["A"].split()[0] != first["B"]
    assert first["C"] == first["D"]


def test_no_state_leaks_between_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        USES_FAKE
        + """
import pytest

def test_first(qstash_tasks):
    qstash_tasks.add("m", count=3)
    assert get(qstash_tasks, "/v1/messages/m/tasks").status_code == 200

@pytest.mark.qstash_tasks(assert_all_requests_served=False)
def test_second(qstash_tasks):
    assert get(qstash_tasks, "/v1/messages/m/tasks").status_code == 404
    assert len(qstash_tasks.calls) == 1
"""
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_xdist_workers_keep_their_own_state(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        USES_FAKE
        + """
import pytest

@pytest.mark.parametrize("n", range(8))
def test_it(qstash_tasks, n):
    qstash_tasks.add(f"m{n}", count=n)
    assert len(get(qstash_tasks, f"/v1/messages/m{n}/tasks").json()["tasks"]) == n
    assert len(qstash_tasks.calls) == 1
"""
    )
    pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly").assert_outcomes(passed=8)


def test_a_module_scoped_fake(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        USES_FAKE
        + """
import pytest
from pytest_qstash_tasks import QStashTasksMock

@pytest.fixture(scope="module")
def fake():
    with QStashTasksMock(base_url="https://qstash-eu-central-1.upstash.io") as fake:
        fake.add("shared", count=10)
        yield fake

def test_one(fake):
    assert len(get(fake, "/v1/messages/shared/tasks").json()["tasks"]) == 10

def test_two(fake):
    assert len(fake.calls) == 1
    assert len(get(fake, "/v1/messages/shared/tasks").json()["tasks"]) == 10
"""
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, pytest_qstash_tasks._plugin, pytest_qstash_tasks;"
        "heavy = {'pydantic', 'respx', 'httpx', 'cronsim'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_cron_library_loads_with_the_first_schedule_only() -> None:
    code = """
import sys
from pytest_qstash_tasks import QStashTasksMock
import requests
with QStashTasksMock() as fake:
    auth = {"Authorization": "Bearer t"}
    requests.post(fake.base_url + "/v2/enqueue/q/https://a.test/x", headers=auth, data="x")
    requests.get(fake.base_url + "/v2/schedules", headers=auth)
    fake.clock.run_all()
    print("cronsim" in sys.modules, end=" ")
    fake.schedules.create("https://a.test/x", "* * * * *")
    print("cronsim" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False True"


def test_the_workflow_dlq_loads_with_its_first_request_only() -> None:
    """The standalone command's start to its URL line is measured (benchmark 6): the
    Workflow DLQ's module waits for a request that needs it."""
    code = """
import sys
from pytest_qstash_tasks import QStashTasksMock
import requests
name = "pytest_qstash_tasks._core.api.workflow_dlq"
with QStashTasksMock() as fake:
    auth = {"Authorization": "Bearer t"}
    requests.get(fake.base_url + "/v2/dlq", headers=auth)
    print(name in sys.modules, end=" ")
    requests.get(fake.base_url + "/v2/dlq?source=workflow", headers=auth)
    print(name in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False True"


def test_no_fake_outlives_its_test(pytester: pytest.Pytester) -> None:
    """Items live for the whole session; their fakes (tasks, calls) must not."""
    pytester.makeconftest(
        """
        import gc, weakref
        import pytest
        from pytest_qstash_tasks import QStashTasksMock

        refs = []

        @pytest.fixture
        def watched(qstash_tasks):
            refs.append(weakref.ref(qstash_tasks))
            return qstash_tasks

        def pytest_sessionfinish(session):
            gc.collect()
            alive = [r for r in refs if r() is not None]
            print(f"ALIVE={len(alive)} OF {len(refs)}")
        """
    )
    pytester.makepyfile(
        "\n".join(f"def test_{i}(watched):\n    watched.add('m', count=1000)\n" for i in range(5))
    )
    result = pytester.runpytest("-s", "-p", "no:randomly")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*ALIVE=0 OF 5*"])


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


def test_the_ini_base_url_wins_over_qstash_url(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Documented order: marker, ini option, QSTASH_URL, default.
    monkeypatch.setenv("QSTASH_URL", "http://127.0.0.1:8080")
    pytester.makeini("[pytest]\nqstash_tasks_base_url = http://127.0.0.1:9090\n")
    pytester.makepyfile(
        """
        import pytest

        def test_ini(qstash_tasks):
            assert qstash_tasks.base_url == "http://127.0.0.1:9090"

        @pytest.mark.qstash_tasks(base_url="http://127.0.0.1:7070")
        def test_marker(qstash_tasks):
            assert qstash_tasks.base_url == "http://127.0.0.1:7070"
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_an_ini_start_in_unix_ms(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nqstash_tasks_start = 1893456000123\n")
    pytester.makepyfile(
        """
        def test_it(qstash_tasks):
            assert qstash_tasks.clock.now == 1893456000123
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
