"""``qstash-tasks-fake serve``: the command, its data file and its control endpoints."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

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
    ]
}


def test_serve_prints_its_url_first_and_serves_the_data_file(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    data = tmp_path / "data.json"
    data.write_text(json.dumps(DATA))
    served = serve("--data", str(data), "--page-size", "40", "--seed", "7")
    generated = walk(served.url, "msg_generated")
    assert len(generated) == 150
    assert {task["state"] for task in generated} == {"failed"}
    assert [task["taskId"] for task in walk(served.url, "msg_given")] == ["tsk_1"]
    assert walk(served.url, "msg_scripted") == []
    assert walk(served.url, "msg_empty") == []
    assert [task["state"] for task in walk(served.url, "msg_delivery")] == ["created"]
    code, err = served.stop()
    assert code == 0
    lines = err.splitlines()
    assert lines[0] == (
        f"qstash-tasks-fake: serving 5 message(s) at {served.url}, control endpoints at "
        f"{served.url}/_fake/ (stop with Ctrl-C)"
    )
    assert re.fullmatch(r"GET /v1/messages/msg_generated/tasks 200 \d+\.\d ms", lines[1])
    # The seed makes the data the same on every start.
    again = serve("--data", str(data), "--page-size", "40", "--seed", "7")
    assert walk(again.url, "msg_generated") == generated


def test_reset_returns_to_the_data_file_or_to_empty(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    data = tmp_path / "data.json"
    data.write_text(json.dumps(DATA))
    served = serve("--data", str(data), "--seed", "7", "--quiet")
    generated = walk(served.url, "msg_generated")
    control = served.url + "/_fake/"
    requests.post(control + "messages", json={"messageId": "extra"}, timeout=5)
    requests.post(control + "clock", json={"advanceMs": 5000}, timeout=5)
    reset = requests.post(control + "reset", timeout=5).json()
    assert reset == {
        "reset": True,
        "now": 1767225600000,
        "messages": ["msg_generated", "msg_given", "msg_scripted", "msg_empty", "msg_delivery"],
    }
    assert walk(served.url, "msg_generated") == generated  # the same seed, the same tasks
    emptied = requests.post(control + "reset", json={"empty": True}, timeout=5)
    assert emptied.json()["messages"] == []
    refused = requests.post(control + "reset", json={"empty": "yes"}, timeout=5)
    assert (refused.status_code, refused.json()) == (
        400,
        {"error": 'POST /_fake/reset takes {} or {"empty": true}'},
    )


def test_problems_advise_the_command_s_own_options_not_python(
    serve: Callable[..., Served],
) -> None:
    served = serve("--quiet", "--max-identical-requests", "2")
    requests.post(served.url + "/_fake/messages", json={"messageId": "m"}, timeout=5)
    assert (
        requests.get(served.url + "/v1/messages/nope/tasks", headers=AUTH, timeout=5).status_code
        == 404
    )
    with requests.Session() as session:  # one connection: one client
        answers = [
            session.get(served.url + "/v1/messages/m/tasks", headers=AUTH, timeout=5)
            for _ in range(3)
        ]
    assert [answer.status_code for answer in answers] == [200, 200, 508]
    assert (
        answers[2]
        .json()["error"]
        .endswith(
            "sent 3 times in a row and got the same 200 answer each time, with nothing changed "
            "in between. A client that pages should stop when the cursor is 0 or missing. (The "
            "limit is max_identical_requests=2; raise it with --max-identical-requests <n>.)"
        )
    )
    problems = requests.get(served.url + "/_fake/problems", timeout=5).json()["problems"]
    text = "\n".join(problems)
    assert "QStashTasksServer" not in text
    assert "expect_unserved" not in text
    assert "@pytest.mark" not in text
    assert problems[0] == (
        "stopped a likely infinite loop: the same request kept getting the same answer "
        f"(QStashTasksLoopError):\n  - GET {served.url}/v1/messages/m/tasks -> 508"
    )
    assert problems[1] == (
        f"1 request(s) to {served.url} could not be served:\n"
        f"  - GET {served.url}/v1/messages/nope/tasks -> 404: message 'nope' is not "
        "registered; registered: 'm'\n"
        "  (the standalone fake only lists this: nothing fails; POST /_fake/reset forgets it)"
    )


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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--page-size", "0"], "error: --page-size: page_size must be an int >= 1, got 0"),
        (["--host", "localhost"], "error: --host: host must be an IP address such as 127.0.0.1"),
        (["--end-cursor", "5"], "argument --end-cursor: invalid choice: '5'"),
        (["--start", "yesterday"], "'yesterday' is not an ISO 8601 time"),
        (["--port", "x"], "argument --port: invalid int value: 'x'"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(args: list[str], message: str) -> None:
    result = run("serve", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", "--port", str(port))
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}: [Errno 98] Address already in use" in result.stderr


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
        ({"message": []}, ":\nmessages: Field required\nmessage: Extra inputs are not permitted"),
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
    result = run("serve", "--data", str(path))
    assert result.returncode == 2
    assert message.format(path=path) in result.stderr
    assert "Traceback" not in result.stderr


def test_a_data_file_that_is_missing_or_not_json(tmp_path: Path) -> None:
    missing = run("serve", "--data", str(tmp_path / "nope.json"))
    assert "nope.json: No such file or directory" in missing.stderr
    (tmp_path / "bad.json").write_text("{messages: []}")
    bad = run("serve", "--data", str(tmp_path / "bad.json"))
    assert "bad.json: not JSON: Expecting property name enclosed in double quotes" in bad.stderr
    assert (missing.returncode, bad.returncode) == (2, 2)


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
    assert sorted(control["messages"]) == sorted(
        m["messageId"] for m in json.loads(block)["messages"]
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


def test_deliver_sends_signed_http_to_the_destinations() -> None:
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
    env = {**os.environ, "QSTASH_CURRENT_SIGNING_KEY": CURRENT, "QSTASH_NEXT_SIGNING_KEY": NEXT}
    process = subprocess.Popen(
        [*COMMAND, "serve", "--port", "0", "--quiet", "--deliver"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
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
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=10)
        hook.shutdown()
        hook.server_close()
    assert (
        "qstash-tasks-fake: delivering published messages over HTTP, signed with "
        f"QSTASH_CURRENT_SIGNING_KEY={CURRENT} QSTASH_NEXT_SIGNING_KEY={NEXT}"
    ) in err
