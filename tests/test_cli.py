"""``qstash-tasks-fake serve``: the command, its data file and its control endpoints."""

from __future__ import annotations

import io
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from pytest_qstash_tasks._cli import main
from tests.helpers import walk_with_requests

COMMAND = [sys.executable, "-m", "pytest_qstash_tasks"]
AUTH = {"Authorization": "Bearer t"}


class Served:
    """A running ``serve`` subprocess and its base URL."""

    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process, self.url = process, url

    def stop(self, how: int = signal.SIGTERM) -> tuple[int, str]:
        """Stop it; its exit status and what it wrote to standard error."""
        self.process.send_signal(how)
        _, err = self.process.communicate(timeout=10)
        return self.process.returncode, err


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    """Start ``qstash-tasks-fake serve`` with the given arguments; stopped at teardown."""
    started: list[Served] = []

    def start(*args: str, stdin: int | None = None) -> Served:
        process = subprocess.Popen(
            [*COMMAND, "serve", *args],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), (url, process.stderr and process.stderr.read())
        started.append(Served(process, url))
        return started[-1]

    yield start
    for served in started:
        if served.process.poll() is None:
            served.stop(signal.SIGKILL)


def run(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args], capture_output=True, text=True, timeout=30, check=False, **kwargs
    )


def walk(url: str, message_id: str) -> list[dict[str, Any]]:
    with requests.Session() as session:
        return walk_with_requests(session, url, message_id, AUTH)


class Here:
    """``main()`` run in this process, where a mutation run can see the command's code:
    what it returned or exited with, and what it wrote."""

    def __init__(self, code: int, out: str, err: str, during: Any = None) -> None:
        self.code, self.out, self.err, self.during = code, out, err, during


class _Lines(io.StringIO):
    """Standard output that hands its first line to whoever waits for it."""

    def __init__(self) -> None:
        super().__init__()
        self.first: queue.Queue[str] = queue.Queue()

    def write(self, text: str) -> int:
        written = super().write(text)
        if "\n" in text:
            self.first.put(self.getvalue().splitlines()[0])
        return written


def here(*args: str, during: Callable[[str], Any] | None = None) -> Here:
    """Run ``qstash-tasks-fake serve --stdin-eof *args`` in this process: it serves until
    ``during(url)`` returns (at once without ``during``), then its standard input closes."""
    read_end, write_end = os.pipe()
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    out, err = _Lines(), io.StringIO()
    outcome: dict[str, Any] = {}

    def drive() -> None:
        try:
            url = out.first.get(timeout=20)
            if url != "exited":
                outcome["value"] = during(url) if during else None
        except BaseException as error:  # handed to the test's thread
            outcome["error"] = error
        finally:
            os.close(write_end)

    driver = threading.Thread(target=drive)
    driver.start()
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = os.fdopen(read_end), out, err
    try:
        code = main(["serve", "--stdin-eof", *args])
    except SystemExit as exit:
        code = int(exit.code or 0)
    finally:
        sys.stdin.close()
        sys.stdin, sys.stdout, sys.stderr = saved
        for number, handler in handlers.items():
            signal.signal(number, handler)
        out.first.put("exited")
        driver.join(timeout=30)
    if "error" in outcome:
        raise outcome["error"]
    return Here(code, out.getvalue(), err.getvalue(), outcome.get("value"))


DATA = {
    "messages": [
        {"messageId": "msg_generated", "count": 150, "states": ["failed"]},
        {
            "messageId": "msg_given",
            "tasks": [
                {
                    "taskId": "tsk_1",
                    "messageId": "msg_given",
                    "url": "https://example.com/hook",
                    "state": "delivered",
                    "retried": 1,
                    "maxRetry": 3,
                }
            ],
        },
        {"messageId": "msg_scripted", "pages": [{"cursor": 7, "tasks": []}, {"tasks": []}]},
        {"messageId": "msg_empty"},
        {"messageId": "msg_delivery", "deliveries": [{"url": "https://x", "outcomes": [500, 200]}]},
    ],
    "dlq": [{"url": "https://x/orders", "responseStatus": 503}],
    "schedules": [
        {"destination": "https://x/nightly", "cron": "0 3 * * *", "scheduleId": "nightly"}
    ],
}


def test_serve_prints_its_url_first_and_serves_the_data_file(tmp_path: Path) -> None:
    data = tmp_path / "data.json"
    data.write_text(json.dumps(DATA))

    def check(url: str) -> list[dict[str, Any]]:
        generated = walk(url, "msg_generated")
        assert len(generated) == 150
        assert {task["state"] for task in generated} == {"failed"}
        assert [task["taskId"] for task in walk(url, "msg_given")] == ["tsk_1"]
        assert walk(url, "msg_scripted") == []
        assert walk(url, "msg_empty") == []
        assert [task["state"] for task in walk(url, "msg_delivery")] == ["created"]
        (schedule,) = requests.get(url + "/v2/schedules", headers=AUTH, timeout=5).json()
        assert (schedule["scheduleId"], schedule["cron"]) == ("nightly", "0 3 * * *")
        assert requests.get(url + "/_fake/health", timeout=5).ok
        return generated

    served = here("--data", str(data), "--page-size", "40", "--seed", "7", during=check)
    url = served.out.strip()
    assert served.code == 0
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
    lines = served.err.splitlines()
    assert lines[0] == (
        f"qstash-tasks-fake: serving 6 message(s) (1 in the DLQ, 1 schedule(s)) at {url}, "
        f"control endpoints at {url}/_fake/, a page to look at {url}/_fake/ui "
        "(stop with Ctrl-C)"
    )
    assert re.fullmatch(r"GET /v1/messages/msg_generated/tasks 200 \d+\.\d ms", lines[1])
    assert re.fullmatch(r"GET /_fake/health 200 \d+\.\d ms", lines[-1])
    # The banner, then a line per request: 4 pages of 150 tasks, 1, 2 scripted, 1, 1, the
    # schedules, health.
    assert len(lines) == 1 + 4 + 1 + 2 + 1 + 1 + 1 + 1
    # The seed makes the data the same on every start.
    again = here("--data", str(data), "--page-size", "40", "--seed", "7", during=check)
    assert again.during == served.during


def test_the_access_log_shows_a_held_request_s_missing_status_as_a_dash() -> None:
    def held(url: str) -> None:
        requests.post(url + "/_fake/messages", json={"messageId": "m"}, timeout=5)
        requests.post(url + "/_fake/faults", json={"kind": "timeout"}, timeout=5)
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.get(url + "/v1/messages/m/tasks", headers=AUTH, timeout=0.2)

    served = here(during=held)  # stopping ends the hold
    assert served.code == 0
    assert re.fullmatch(r"GET /v1/messages/m/tasks - \d+\.\d ms", served.err.splitlines()[-1])


def test_the_start_is_unix_ms_or_iso_8601() -> None:
    def now(url: str) -> int:
        answer: int = requests.get(url + "/_fake/clock", timeout=5).json()["now"]
        return answer

    assert here("--quiet", "--start", "1780272000000", during=now).during == 1780272000000
    assert here("--quiet", "--start", "2026-06-01T00:00:00Z", during=now).during == 1780272000000
    assert here("--quiet", during=now).during == 1767225600000


def test_the_access_log_shows_how_long_an_answer_took_in_ms() -> None:
    def slow(url: str) -> None:
        requests.post(url + "/_fake/messages", json={"messageId": "m"}, timeout=5)
        requests.post(url + "/_fake/faults", json={"kind": "delay", "seconds": 0.2}, timeout=5)
        requests.get(url + "/v1/messages/m/tasks", headers=AUTH, timeout=5)

    line = here(during=slow).err.splitlines()[-1]
    match = re.fullmatch(r"GET /v1/messages/m/tasks 200 (\d+\.\d) ms", line)
    assert match is not None, line
    assert 200 <= float(match[1]) < 2000


def test_reset_returns_to_the_data_file_or_to_empty(tmp_path: Path) -> None:
    data = tmp_path / "data.json"
    data.write_text(json.dumps(DATA))

    def check(url: str) -> None:
        generated = walk(url, "msg_generated")
        control = url + "/_fake/"
        (dead,) = requests.get(control + "dlq", timeout=5).json()["dlq"]
        requests.post(control + "messages", json={"messageId": "extra"}, timeout=5)
        requests.post(control + "dlq", json={"url": "https://x/more"}, timeout=5)
        requests.post(control + "clock", json={"advanceMs": 5000}, timeout=5)
        reset = requests.post(control + "reset", timeout=5).json()
        assert reset == {
            "reset": True,
            "now": 1767225600000,
            "messages": [
                "msg_generated", "msg_given", "msg_scripted", "msg_empty", "msg_delivery",
                dead["messageId"],
            ],
        }  # fmt: skip
        assert walk(url, "msg_generated") == generated  # the same seed, the same tasks
        assert requests.get(control + "dlq", timeout=5).json()["dlq"] == [dead]
        emptied = requests.post(control + "reset", json={"empty": True}, timeout=5)
        assert emptied.json()["messages"] == []
        assert requests.get(control + "dlq", timeout=5).json()["dlq"] == []
        refused = requests.post(control + "reset", json={"empty": "yes"}, timeout=5)
        assert (refused.status_code, refused.json()) == (
            400,
            {"error": 'POST /_fake/reset takes {} or {"empty": true}'},
        )

    assert here("--data", str(data), "--seed", "7", "--quiet", during=check).err.count("\n") == 1


def test_problems_advise_the_command_s_own_options_not_python() -> None:
    def check(url: str) -> None:
        requests.post(url + "/_fake/messages", json={"messageId": "m"}, timeout=5)
        unknown = requests.get(url + "/v1/messages/nope/tasks", headers=AUTH, timeout=5)
        assert unknown.status_code == 404
        with requests.Session() as session:  # one connection: one client
            answers = [
                session.get(url + "/v1/messages/m/tasks", headers=AUTH, timeout=5) for _ in range(3)
            ]
        assert [answer.status_code for answer in answers] == [200, 200, 508]
        assert (
            answers[2]
            .json()["error"]
            .endswith(
                "sent 3 times in a row and got the same 200 answer each time, with nothing "
                "changed in between. A client that pages should stop when the cursor is 0 or "
                "missing. (The limit is max_identical_requests=2; raise it with "
                "--max-identical-requests <n>.)"
            )
        )
        problems = requests.get(url + "/_fake/problems", timeout=5).json()["problems"]
        text = "\n".join(problems)
        assert "QStashTasksServer" not in text
        assert "expect_unserved" not in text
        assert "@pytest.mark" not in text
        assert problems[0] == (
            "stopped a likely infinite loop: the same request kept getting the same answer "
            f"(QStashTasksLoopError):\n  - GET {url}/v1/messages/m/tasks -> 508"
        )
        assert problems[1] == (
            f"1 request(s) to {url} could not be served:\n"
            f"  - GET {url}/v1/messages/nope/tasks -> 404: message 'nope' is not "
            "registered; registered: 'm'\n"
            "  (the standalone fake only lists this: nothing fails; POST /_fake/reset forgets it)"
        )

    assert here("--quiet", "--max-identical-requests", "2", during=check).code == 0


def test_each_setting_reaches_the_fake(tmp_path: Path) -> None:
    def check(url: str) -> dict[str, Any]:
        unauthorised = requests.get(url + "/_fake/messages", headers=AUTH, timeout=5)
        headers = {"Authorization": "Bearer secret"}
        requests.post(url + "/_fake/messages", json={"messageId": "m", "count": 3}, headers=headers)
        first = requests.get(url + "/v1/messages/m/tasks", headers=headers, timeout=5).json()
        cursor = first["cursor"]
        last = requests.get(
            url + f"/v1/messages/m/tasks?cursor={cursor}", headers=headers, timeout=5
        ).json()
        too_big = requests.post(
            url + "/v2/publish/https://example.com/h", data=b"x" * 11, headers=headers, timeout=5
        )
        published = requests.post(
            url + "/v2/publish/https://example.com/h", data=b"x" * 10, headers=headers, timeout=5
        ).json()
        requests.post(url + "/_fake/clock", json={"advanceMs": 60_000}, headers=headers, timeout=5)
        message = requests.get(
            url + "/v1/messages/" + published["messageId"] + "/tasks", headers=headers, timeout=5
        ).json()["tasks"][0]
        clock = requests.get(url + "/_fake/clock", headers=headers, timeout=5).json()
        return {
            "unauthorised": unauthorised.status_code,
            "pages": (len(first["tasks"]), len(last["tasks"]), last.get("cursor", "omitted")),
            "too big": too_big.status_code,
            "published": (message["state"], message["maxRetry"], message["error"]),
            "now": clock["now"],
        }

    served = here(
        "--quiet",
        "--token=secret",
        "--page-size=2",
        "--end-cursor=omit",
        "--start=2026-06-01T00:00:00Z",
        "--default-retries=0",
        "--default-answer=503",
        "--max-message-size=10",
        during=check,
    )
    assert served.during == {
        "unauthorised": 401,
        "pages": (2, 1, "omitted"),
        "too big": 413,
        "published": ("failed", 0, "HTTP status 503"),
        "now": 1780272060000,
    }


@pytest.mark.parametrize("given", [(), ("--end-cursor=0",)])
def test_the_last_page_ends_on_cursor_0_by_default_and_when_asked(given: tuple[str, ...]) -> None:
    def last_page(url: str) -> Any:
        requests.post(url + "/_fake/messages", json={"messageId": "m", "count": 1}, headers=AUTH)
        return requests.get(url + "/v1/messages/m/tasks", headers=AUTH, timeout=5).json()

    served = here("--quiet", *given, during=last_page)
    assert served.during["cursor"] == 0
    assert len(served.during["tasks"]) == 1


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "stdin"])
def test_it_stops_cleanly(serve: Callable[..., Served], how: str) -> None:
    served = serve("--quiet", "--stdin-eof", stdin=subprocess.PIPE)
    assert requests.get(served.url + "/_fake/health", timeout=5).ok
    port = int(served.url.rsplit(":", 1)[1])
    if how == "stdin":
        assert served.process.stdin is not None
        served.process.stdin.close()
        code = served.process.wait(timeout=10)
        assert served.process.stderr is not None
        assert served.process.stdout is not None
        err = served.process.stderr.read()
        served.process.stderr.close()
        served.process.stdout.close()
    else:
        code, err = served.stop(getattr(signal, how))
    assert code == 0, err
    assert "Traceback" not in err
    assert err.count("\n") == 1  # --quiet: the banner only
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass


def test_the_module_and_the_console_script_are_one_command() -> None:
    script = Path(sys.executable).parent / "qstash-tasks-fake"
    by_module = run("serve", "--help")
    assert by_module.returncode == 0
    assert "--stdin-eof" in by_module.stdout
    if script.exists():  # installed with the package
        by_script = subprocess.run(
            [str(script), "serve", "--help"], capture_output=True, text=True, check=True
        )
        assert by_script.stdout == by_module.stdout
    assert run().returncode == 2


HELP = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    ("args", "shown"), [(["--help"], "help.txt"), (["serve", "--help"], "serve-help.txt")]
)
def test_the_help_reads_as_written(
    args: list[str], shown: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The text a user reads, whole: regenerate it on purpose with
    # COLUMNS=100 python -m pytest_qstash_tasks [serve] --help > tests/data/<file>
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 0
    assert capsys.readouterr().out == (HELP / shown).read_text()


def test_no_command_prints_the_help_to_stderr_and_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert main([]) == 2
    assert capsys.readouterr() == ("", (HELP / "help.txt").read_text())


def test_the_options_page_gives_each_option_and_its_default() -> None:
    from pytest_qstash_tasks._cli import _parser

    page = (DOCS / "transports" / "standalone.md").read_text()
    table = page.split("## Options", 1)[1].split("\n\n", 2)[1]
    defaults = vars(_parser().parse_args(["serve"]))
    documented = set()
    for row in table.splitlines()[2:]:
        names, default = row.split(" | ")[:2]
        for option in re.findall(r"`(--[a-z-]+)", names):
            documented.add(option)
            value = defaults[option[2:].replace("-", "_")]
            if option.endswith("signing-key"):
                continue  # from the environment, else a fixed pair
            shown = "none" if value is None else "off" if value is False else f"`{value}`"
            if option == "--start":
                shown = "`2026-01-01T00:00:00Z`"  # None: the fake's own start
            assert default == shown.replace(".0`", "`"), option
    assert documented == {"--" + name.replace("_", "-") for name in defaults} - {"--command"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--page-size", "0"], "error: --page-size: page_size must be an int >= 1, got 0"),
        (["--host", "localhost"], "error: --host: host must be an IP address such as 127.0.0.1"),
        (["--end-cursor", "5"], "argument --end-cursor: invalid choice: '5'"),
        (["--start", "yesterday"], "'yesterday' is not an ISO 8601 time"),
        (["--port", "x"], "argument --port: invalid int value: 'x'"),
        (
            ["--delivery-timeout", "soon"],
            "argument --delivery-timeout: invalid float value: 'soon'",
        ),
        (
            ["--delivery-timeout", "-1"],
            "error: --delivery-timeout: delivery_timeout must be a number of seconds >= 0",
        ),
        (
            ["--port", "70000"],
            "error: --port: port must be an int 0-65535 (0: a free one), got 70000",
        ),
    ],
)
def test_bad_arguments_exit_2_with_a_message(args: list[str], message: str) -> None:
    result = here(*args)
    assert result.code == 2
    assert message in result.err
    assert "Traceback" not in result.err
    assert result.out == ""


def test_a_bad_argument_s_whole_message_names_the_command_and_the_option() -> None:
    assert here("--default-answer", "99").err.splitlines()[-1] == (
        "qstash-tasks-fake: error: --default-answer: default_answer: an outcome status must be "
        "100-599, got 99"
    )


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = here("--port", str(port))
    assert result.code == 2
    assert result.err == (
        f"qstash-tasks-fake: error: cannot listen on 127.0.0.1:{port}: "
        "[Errno 98] Address already in use\n"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"messages": [{"messageId": "a"}, {"messageId": "b", "count": -1}]},
            "messages[1] ('b').count: Input should be greater than or equal to 0",
        ),
        (
            {"messages": [{"messageId": "a", "count": 2, "pages": []}]},
            "messages[0] ('a'): Value error, give one of tasks, count and pages, not count and pages",
        ),
        ({"message": []}, ":\nmessage: Extra inputs are not permitted"),
        (
            {"dlq": [{"url": "https://a.test/", "retries": -1}]},
            ":\ndlq[0].retries: Input should be greater than or equal to 0",
        ),
        (
            {"dlq": [{"url": "https://a.test/"}, {"url": "ftp://a.test/"}]},
            "--data {path}: dlq[1] ('ftp://a.test/'): a DLQ entry's url is an http(s) URL, "
            "got 'ftp://a.test/'",
        ),
        (
            {"dlq": [{"url": "https://a.test/", "responseStatus": 204}]},
            "--data {path}: dlq[0] ('https://a.test/'): response_status is what the last "
            "attempt met: 0 (no answer) or a status of 100-599 that is not 2xx, got 204",
        ),
        (
            {"schedules": [{"destination": "https://a.test/", "cron": "0 25 * * *"}]},
            "--data {path}: schedules[0] ('https://a.test/'): invalid cron '0 25 * * *': Bad hour",
        ),
        (
            {"schedules": [{"destination": "https://a.test/"}]},
            ":\nschedules[0].cron: Field required",
        ),
        (
            {"messages": [{"messageId": "a", "count": 1, "overrides": {"colour": "red"}}]},
            "--data {path}: messages[0] ('a'): add() got unknown field(s) ['colour']",
        ),
        (
            {"messages": [{"messageId": "a", "tasks": [{"taskId": "t"}]}]},
            "--data {path}: messages[0] ('a'): task.maxRetry: Field required",
        ),
        (
            {"messages": [{"messageId": "a", "pages": [{"cursor": 5, "tasks": []}]}]},
            "--data {path}: messages[0] ('a'): ",
        ),
    ],
)
def test_a_bad_data_file_names_the_entry(tmp_path: Path, data: object, message: str) -> None:
    path = tmp_path / "data.json"
    path.write_text(json.dumps(data))
    with socket.socket() as probe:  # the port the command will take: freed after the error
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = here("--data", str(path), "--port", str(port))
    assert result.code == 2
    assert message.format(path=path) in result.err
    assert result.err.startswith(f"qstash-tasks-fake: error: --data {path}")
    assert "Traceback" not in result.err
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))  # the server it built was stopped


def test_a_data_file_that_is_missing_or_not_json(tmp_path: Path) -> None:
    missing = here("--data", str(tmp_path / "nope.json"))
    assert missing.err == (
        f"qstash-tasks-fake: error: --data {tmp_path / 'nope.json'}: No such file or directory\n"
    )
    (tmp_path / "bad.json").write_text("{messages: []}")
    bad = here("--data", str(tmp_path / "bad.json"))
    assert bad.err == (
        f"qstash-tasks-fake: error: --data {tmp_path / 'bad.json'}: not JSON: Expecting "
        "property name enclosed in double quotes: line 1 column 2 (char 1)\n"
    )
    assert (missing.code, bad.code) == (2, 2)


DOCS = Path(__file__).parent.parent / "docs"


def test_the_docs_data_file_loads_and_serves_what_the_page_says(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    page = (DOCS / "transports" / "standalone.md").read_text()
    (block,) = re.findall(r"^```json\n(.*?)^```", page, re.DOTALL | re.MULTILINE)
    data = tmp_path / "tasks.json"
    data.write_text(block)
    served = serve("--data", str(data), "--quiet")
    assert len(walk(served.url, "msg_generated")) == 250
    assert {task["state"] for task in walk(served.url, "msg_failed")} == {"failed"}
    assert walk(served.url, "msg_live")[0]["state"] == "created"
    control = requests.get(f"{served.url}/_fake/messages", timeout=5).json()
    (dead,) = requests.get(f"{served.url}/_fake/dlq", timeout=5).json()["dlq"]
    assert sorted(control["messages"]) == sorted(
        [m["messageId"] for m in json.loads(block)["messages"]] + [dead["messageId"]]
    )
    assert (dead["url"], dead["responseStatus"], dead["responseBody"]) == (
        "https://example.com/orders",
        503,
        "database down",
    )
    tasks = walk(served.url, dead["messageId"])
    assert [(t["state"], t["retried"], t["error"]) for t in tasks] == [
        ("failed", 2, "HTTP status 503: database down")
    ]
    (schedule,) = requests.get(f"{served.url}/v2/schedules", headers=AUTH, timeout=5).json()
    assert (schedule["scheduleId"], schedule["retries"]) == ("nightly-report", 1)
    assert schedule["cron"] == "CRON_TZ=Europe/Berlin 0 3 * * *"
    (listed,) = requests.get(f"{served.url}/v2/dlq", headers=AUTH, timeout=5).json()["messages"]
    assert listed["header"] == {"Content-Type": ["application/json"]}
    assert (listed["dlqId"], listed["body"], listed["maxRetries"]) == (
        dead["dlqId"],
        '{"order": 7}',
        2,
    )


@pytest.mark.parametrize("page", ["transports/standalone.md", "howto/publish-then-check.md"])
def test_the_docs_curl_walkthrough_runs_as_the_page_shows(tmp_path: Path, page: str) -> None:
    page = (DOCS / page).read_text()
    walkthrough = page.split("## A walk-through with curl", 1)[1]
    script = tmp_path / "walkthrough.sh"
    script.write_text(walkthrough.split("```bash\n", 1)[1].split("```")[0])
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    if not (Path(sys.executable).parent / "qstash-tasks-fake").exists():
        pytest.skip("the console script is not installed in this environment")
    result = subprocess.run(
        ["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    shown = walkthrough.split("```text\n", 1)[1].split("```")[0]
    assert result.stdout == shown


def test_the_url_line_reaches_a_pipe_at_once_without_pythonunbuffered() -> None:
    import os
    import select

    env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    process = subprocess.Popen(
        [*COMMAND, "serve", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 20)
        assert ready, "no URL line within 20 s: stdout is not flushed"
        assert process.stdout.readline().startswith(b"http://127.0.0.1:")
    finally:
        process.terminate()
        process.communicate(timeout=10)


CURRENT = "sig_" + "c" * 28
NEXT = "sig_" + "n" * 28


def test_deliver_sends_signed_http_to_the_destinations(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from qstash import Receiver

    received: list[tuple[str, dict[str, str], bytes]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, dict(self.headers), body))
            self.send_response(500 if len(received) == 1 else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    monkeypatch.setenv("QSTASH_CURRENT_SIGNING_KEY", CURRENT)
    monkeypatch.setenv("QSTASH_NEXT_SIGNING_KEY", NEXT)

    def check(url: str) -> None:
        destination = f"http://127.0.0.1:{hook.server_address[1]}/hook"
        requests.post(f"{url}/v2/publish/{destination}", data=b"hi", headers=AUTH, timeout=5)
        requests.post(f"{url}/_fake/reset", json={"empty": True}, timeout=5)  # --deliver survives
        published = requests.post(
            f"{url}/v2/publish/{destination}", data=b"hi", headers=AUTH, timeout=5
        )
        message_id = published.json()["messageId"]
        requests.post(f"{url}/_fake/clock", json={"advanceMs": 60_000}, timeout=5)
        tasks = requests.get(
            f"{url}/v1/messages/{message_id}/tasks", headers=AUTH, timeout=5
        ).json()
        assert (tasks["tasks"][0]["state"], tasks["tasks"][0]["retried"]) == ("delivered", 1)
        assert [path for path, _, _ in received] == ["/hook", "/hook"]
        _, headers, body = received[0]
        Receiver(CURRENT, NEXT).verify(
            signature=headers["Upstash-Signature"], body=body.decode(), url=destination
        )
        deliveries = requests.get(f"{url}/_fake/deliveries", timeout=5).json()["deliveries"]
        assert [(d["status"], d["retried"]) for d in deliveries] == [(500, 0), (200, 1)]
        keys = requests.get(f"{url}/_fake/signing-keys", timeout=5).json()
        assert keys == {"current": CURRENT, "next": NEXT}
        rotated = requests.post(f"{url}/_fake/signing-keys/rotate", timeout=5).json()
        assert rotated["current"] == NEXT
        # Any host, not loopback names only: 0.0.0.0 is no loopback address, yet a
        # connection to it reaches this machine's listeners (Linux, macOS).
        far = f"http://0.0.0.0:{hook.server_address[1]}/far"
        requests.post(f"{url}/v2/publish/{far}", data=b"hi", headers=AUTH, timeout=5)
        requests.post(f"{url}/_fake/clock", json={"advanceMs": 60_000}, timeout=5)
        assert received[-1][0] == "/far"

    try:
        err = here("--port", "0", "--quiet", "--deliver", during=check).err
    finally:
        hook.shutdown()
        hook.server_close()
    assert (
        "qstash-tasks-fake: delivering published messages over HTTP, signed with "
        f"QSTASH_CURRENT_SIGNING_KEY={CURRENT} QSTASH_NEXT_SIGNING_KEY={NEXT}"
    ) in err


def test_deliver_reaches_https_destinations_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import trustme

    received: list[bytes] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    authority = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))  # the app's CA bundle
    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    hook.socket = context.wrap_socket(hook.socket, server_side=True)
    threading.Thread(target=hook.serve_forever, daemon=True).start()

    def check(url: str) -> None:
        destination = f"https://127.0.0.1:{hook.server_address[1]}/hook"
        published = requests.post(
            f"{url}/v2/publish/{destination}", data=b"sealed", headers=AUTH, timeout=5
        )
        requests.post(f"{url}/_fake/clock", json={"advanceMs": 60_000}, timeout=5)
        deliveries = requests.get(f"{url}/_fake/deliveries", timeout=5).json()["deliveries"]
        assert [(d["messageId"], d["status"]) for d in deliveries] == [
            (published.json()["messageId"], 200)
        ]

    try:
        here("--port", "0", "--quiet", "--deliver", during=check)
    finally:
        hook.shutdown()
        hook.server_close()
    assert received == [b"sealed"]  # delivered over TLS, not met by the default answer


def test_dev_mode_stands_in_for_upstash_s_dev_server(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_qstash_tasks._cli import DEV_CURRENT_SIGNING_KEY, DEV_NEXT_SIGNING_KEY, DEV_TOKEN

    with socket.socket() as probe:  # a free port, as QSTASH_DEV_PORT names one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("QSTASH_DEV_PORT", str(port))
    monkeypatch.setenv("QSTASH_CURRENT_SIGNING_KEY", "sig_" + "e" * 28)  # not what dev uses

    def check(url: str) -> Any:
        dev = {"Authorization": f"Bearer {DEV_TOKEN}"}
        keys = requests.get(url + "/v2/keys", headers=dev, timeout=5)
        refused = requests.get(url + "/v2/keys", headers=AUTH, timeout=5)
        health = requests.get(url + "/_fake/health", timeout=5)
        return keys.json(), refused.status_code, health.status_code

    served = here("--dev", "--quiet", during=check)
    assert served.out.strip() == f"http://127.0.0.1:{port}"
    assert served.during == (
        {"current": DEV_CURRENT_SIGNING_KEY, "next": DEV_NEXT_SIGNING_KEY},
        401,
        200,
    )  # the dev keys for the dev token; any other refused; health open to probes
    assert "delivering published messages over HTTP" in served.err
    monkeypatch.setenv("QSTASH_DEV_PORT", "eighty")
    refused = here("--dev")
    assert refused.code == 2
    assert refused.err.endswith(
        "qstash-tasks-fake: error: QSTASH_DEV_PORT must be a port 1-65535, got 'eighty'\n"
    )


def test_the_docs_compose_service_runs_as_the_page_shows(tmp_path: Path) -> None:
    """The docker-compose service on the standalone page: its command (past the image's
    pip line, which this suite's install stands for) serves the page's data file, and its
    healthcheck passes. Only the port (a free one here) and the mounted file's path
    differ."""
    import shlex

    import yaml

    page = (DOCS / "transports" / "standalone.md").read_text()
    compose_block = page.split("## In docker-compose", 1)[1].split("```yaml\n", 1)[1]
    service = yaml.safe_load(compose_block.split("```")[0])["services"]["qstash"]
    (data_block,) = re.findall(r"^```json\n(.*?)^```", page, re.DOTALL | re.MULTILINE)
    mount, volume = service["volumes"]
    assert volume == "qstash-state:/state"
    assert yaml.safe_load(compose_block.split("```")[0])["volumes"] == {"qstash-state": {}}
    data = tmp_path / "tasks.json"
    data.write_text(data_block)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    shell, dash_c, script = shlex.split(service["command"])
    assert (shell, dash_c) == ("sh", "-c")
    install, serve_line = script.split("&&")
    assert shlex.split(install) == ["pip", "install", "pytest-qstash-tasks"]
    serve_line = serve_line.replace("8080", port).replace(mount.split(":")[1], str(data))
    args = shlex.split(serve_line.replace("/state/", f"{tmp_path}/"))
    assert args[:2] == ["qstash-tasks-fake", "serve"]
    for start in ("new, kept in", "loaded from"):  # a second `up` finds the first's state
        _serve_as_composed(args, port, service, f"state {start} {tmp_path}/qstash.json")


def _serve_as_composed(args: list[str], port: str, service: dict[str, Any], said: str) -> None:
    process = subprocess.Popen(
        [*COMMAND, *args[1:]], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith(f"http://0.0.0.0:{port}")
        check = [part.replace("8080", port) for part in service["healthcheck"]["test"]]
        assert check[:2] == ["CMD", "python"]
        healthy = subprocess.run([sys.executable, *check[2:]], capture_output=True, timeout=30)
        assert healthy.returncode == 0, healthy.stderr
        tasks = requests.get(
            f"http://127.0.0.1:{port}/v1/messages/msg_generated/tasks",
            headers={"Authorization": "Bearer dev-token"},
            timeout=5,
        )
        assert tasks.status_code == 200
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert said in err


def _later(url: str, body: str) -> str:
    """Publish a message due in a day (it stays pending: readable after a restart)."""
    answer = requests.post(
        f"{url}/v2/publish/https://app.example/later", data=body,
        headers={**AUTH, "Upstash-Delay": "1d"}, timeout=5,
    )  # fmt: skip
    assert answer.ok, answer.text
    message_id: str = answer.json()["messageId"]
    return message_id


def _pending(url: str, message_ids: list[str]) -> list[str]:
    """Which of ``message_ids`` the fake at ``url`` holds."""
    with requests.Session() as session:
        return [
            message_id
            for message_id in message_ids
            if session.get(f"{url}/v2/messages/{message_id}", headers=AUTH, timeout=5).ok
        ]


def test_the_state_survives_a_restart(serve: Callable[..., Served], tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    first = serve("--quiet", "--state", str(state), "--state-every", "0")
    message_id = _later(first.url, "kept")
    for path, body in (
        ("/v2/schedules/https://app.example/nightly", None),
        ("/v2/queues", {"queueName": "line", "parallelism": 2}),
        ("/v2/topics/team/endpoints", {"endpoints": [{"url": "https://app.example/a"}]}),
        ("/v2/keys/rotate", None),
    ):
        headers = {**AUTH, "Upstash-Cron": "0 3 * * *"}
        assert requests.post(first.url + path, json=body, headers=headers, timeout=5).ok
    reads = ("/v2/schedules", "/v2/queues", "/v2/topics", "/v2/keys", f"/v2/messages/{message_id}")

    def read(url: str) -> list[Any]:
        return [requests.get(url + path, headers=AUTH, timeout=5).json() for path in reads]

    before = read(first.url)
    assert not state.exists()  # --state-every 0: written at stop only
    code, err = first.stop()
    assert code == 0, err
    assert err.splitlines()[1] == f"qstash-tasks-fake: state new, kept in {state}, written at stop"
    second = serve("--quiet", "--state", str(state))
    assert read(second.url) == before
    code, err = second.stop(signal.SIGINT)
    assert code == 0, err
    assert err.splitlines()[0].startswith("qstash-tasks-fake: serving 1 message(s) (1 schedule(s))")
    assert err.splitlines()[1] == (
        f"qstash-tasks-fake: state loaded from {state}, written every 5 s and at stop"
    )


def test_a_kill_mid_write_leaves_the_last_complete_state(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    state, data = tmp_path / "state.json", tmp_path / "data.json"
    # Thousands of tasks: each write takes long enough for a kill to land inside one.
    data.write_text(json.dumps({"messages": [{"messageId": "msg_big", "count": 20_000}]}))
    published: list[str] = []
    for _ in range(3):
        served = serve(
            "--quiet", "--data", str(data), "--state", str(state), "--state-every", "0.01"
        )
        # Everything up to the last write seen complete is there; nothing else is.
        assert set(_pending(served.url, published)) == set(published[: _seen(state, published)])
        assert len(walk(served.url, "msg_big")) == 20_000
        for number in range(40):
            published.append(_later(served.url, str(number)))
            if number == 20:
                # Wait for a write that holds these: a complete one, by now on disk.
                while _seen(state, published) < len(published):
                    pass
        time.sleep(0.05)  # the write of the last publish under way (each takes ~200 ms)
        served.process.kill()  # SIGKILL: no last write, and likely in the middle of one
        served.process.communicate(timeout=10)
    # What a kill between the temporary file's making and its rename leaves behind:
    (tmp_path / ".state.json.k1ll3d.tmp").write_bytes(b'{"format": "qstash-tasks-fake st')
    restarted = serve("--quiet", "--state", str(state))
    assert _pending(restarted.url, published[:21]) == published[:21]
    assert list(tmp_path.glob(".state.json.*.tmp")) == []  # cleared at the start
    assert state.stat().st_mode & 0o777 == 0o666 & ~_umask()  # as a file the user made


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _seen(state: Path, published: list[str]) -> int:
    """How many of ``published``, in order, the state file holds."""
    from pytest_qstash_tasks._core.control.state_file import read_state

    try:
        document = read_state(state.read_bytes())
    except FileNotFoundError:
        return 0
    held = document["state"]["outbox"]["messages"]
    count = 0
    while count < len(published) and published[count] in held:
        count += 1
    return count


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"format": "qstash-tasks-fake state", "version": 1, "clo', "not JSON ("),
        (
            b'{"format": "qstash-tasks-fake state", "version": 9}',
            "written by a newer qstash-tasks-fake (state version 9; this one reads version 1)",
        ),
    ],
    ids=["cut-short", "newer"],
)
def test_a_state_file_it_cannot_load_is_refused_and_left_as_it_is(
    tmp_path: Path, content: bytes, message: str
) -> None:
    state = tmp_path / "state.json"
    state.write_bytes(content)
    result = here("--state", str(state))
    assert result.code == 2
    assert f"qstash-tasks-fake: error: --state {state}: cannot load it: {message}" in result.err
    assert "Traceback" not in result.err
    assert state.read_bytes() == content  # never overwritten


def test_state_options_are_checked_before_serving(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "state.json"
    result = here("--state", str(missing))
    assert (result.code, result.out) == (2, "")
    assert f"--state {missing}: no directory {str(missing.parent)!r}" in result.err
    result = here("--state", str(tmp_path / "s.json"), "--state-every", "-1")
    assert "error: --state-every: seconds >= 0, got -1.0" in result.err
    result = here("--state-every", "1")
    assert result.code == 2
    assert (
        "error: --state-every: it says how often --state FILE is written; give --state"
        in result.err
    )


def test_a_state_it_cannot_write_at_stop_is_said_and_the_exit_status_is_1(tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "gone"
    folder.mkdir()
    state = folder / "state.json"

    def lose_the_folder(url: str) -> None:
        _later(url, "kept nowhere")
        shutil.rmtree(folder)

    result = here("--quiet", "--state", str(state), "--state-every", "0", during=lose_the_folder)
    assert result.code == 1
    lines = result.err.splitlines()
    assert lines[-2] == (
        f"qstash-tasks-fake: could not write the state to {state}: No such file or directory"
    )
    assert lines[-1] == f"qstash-tasks-fake: the state since the last write to {state} is lost"
