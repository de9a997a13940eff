"""The loopback server side by side with pytest-httpserver, serving the same page.

Used by bench.py. Both servers run in this process, so the CPU time of a round is the
client's and the server's together; the wall time is checked beside it, since a stall
(Nagle's 40 ms, a poll interval) costs wall time and no CPU.
"""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import aiohttp
import httpx
import requests
from pytest_httpserver import HTTPServer

from pytest_qstash_tasks import QStashTasksServer, make_tasks

PATH = "/v1/messages/msg_1/tasks"
logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the peer logs every request
AUTH = {"Authorization": "Bearer t"}


def _servers() -> tuple[QStashTasksServer, HTTPServer, bytes]:
    ours = QStashTasksServer(max_identical_requests=10**9)  # one request, repeated on purpose
    ours.add("msg_1", make_tasks(100, message_id="msg_1", seed=1))
    ours.start()
    body = requests.get(ours.base_url + PATH, headers=AUTH, timeout=5).content
    peer = HTTPServer(host="127.0.0.1", port=0)
    peer.expect_request(PATH).respond_with_data(body, content_type="application/json")
    peer.start()
    return ours, peer, body


def _interleaved(
    sides: dict[str, Callable[[], object]], rounds: int
) -> dict[str, tuple[float, float]]:
    """Median (CPU, wall) seconds of each side, rounds interleaved."""
    cpu: dict[str, list[float]] = {name: [] for name in sides}
    wall: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, run in sides.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            run()
            cpu[name].append(time.process_time() - started_cpu)
            wall[name].append(time.perf_counter() - started)
    return {name: (statistics.median(cpu[name]), statistics.median(wall[name])) for name in sides}


def per_request(rounds: int, per_round: int = 50) -> dict[str, float]:
    """Per-request CPU of ours / pytest-httpserver for three clients, and ours wall / CPU."""
    ours, peer, body = _servers()
    urls = {"ours": ours.base_url + PATH, "peer": peer.url_for(PATH)}
    session = requests.Session()
    client = httpx.Client()
    loop = asyncio.new_event_loop()
    aio = loop.run_until_complete(_aiohttp_session())

    def with_requests(url: str) -> Callable[[], None]:
        def run() -> None:
            for _ in range(per_round):
                assert len(session.get(url, headers=AUTH).content) == len(body)

        return run

    def with_httpx(url: str) -> Callable[[], None]:
        def run() -> None:
            for _ in range(per_round):
                assert len(client.get(url, headers=AUTH).content) == len(body)

        return run

    def with_aiohttp(url: str) -> Callable[[], None]:
        async def requests_in_a_row() -> None:
            for _ in range(per_round):
                async with aio.get(url, headers=AUTH) as answer:
                    assert len(await answer.read()) == len(body)

        return lambda: loop.run_until_complete(requests_in_a_row())

    results: dict[str, float] = {}
    try:
        for name, make in (("requests", with_requests), ("httpx", with_httpx)):
            timed = _interleaved({side: make(url) for side, url in urls.items()}, rounds)
            results[name] = timed["ours"][0] / timed["peer"][0]
            results[f"{name} wall/cpu"] = timed["ours"][1] / timed["ours"][0]
            results[f"{name} us"] = timed["ours"][1] / per_round * 1e6
        timed = _interleaved({side: with_aiohttp(url) for side, url in urls.items()}, rounds)
        results["aiohttp"] = timed["ours"][0] / timed["peer"][0]
        results["aiohttp wall/cpu"] = timed["ours"][1] / timed["ours"][0]
        results["aiohttp us"] = timed["ours"][1] / per_round * 1e6
    finally:
        loop.run_until_complete(aio.close())
        loop.close()
        session.close()
        client.close()
        ours.stop()
        peer.clear()
        if peer.is_running():
            peer.stop()
    return results


async def _aiohttp_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()


def start_and_stop(rounds: int) -> dict[str, float]:
    """Wall time, medians of interleaved rounds: start plus a first answer to ``requests``,
    ours / pytest-httpserver's; and our stop with a keep-alive connection open / with
    none open (a stop that waited for an idle connection, or for a poll, shows here)."""
    timings: dict[str, list[float]] = {
        "ours start": [],
        "peer start": [],
        "ours stop, kept open": [],
        "ours stop, none open": [],
    }
    url = "/v1/messages/m/tasks"
    for _ in range(rounds):
        started = time.perf_counter()
        fake = QStashTasksServer().start()
        fake.add_message("m")
        with requests.Session() as session:
            session.get(fake.base_url + url, headers=AUTH)
            timings["ours start"].append(time.perf_counter() - started)
            stopping = time.perf_counter()
            fake.stop()
            timings["ours stop, kept open"].append(time.perf_counter() - stopping)

        fake = QStashTasksServer().start()
        fake.add_message("m")
        requests.get(fake.base_url + url, headers=AUTH)  # a connection of its own, closed
        stopping = time.perf_counter()
        fake.stop()
        timings["ours stop, none open"].append(time.perf_counter() - stopping)

        started = time.perf_counter()
        peer = HTTPServer(host="127.0.0.1", port=0)
        peer.expect_request(url).respond_with_data("[]")
        peer.start()
        requests.get(peer.url_for(url))
        timings["peer start"].append(time.perf_counter() - started)
        # Not timed: the peer's stop waits out its server's poll (up to half a second).
        peer.stop()
    median = {name: statistics.median(values) for name, values in timings.items()}
    return {
        "start": median["ours start"] / median["peer start"],
        "stop": median["ours stop, kept open"] / median["ours stop, none open"],
        "start ms": median["ours start"] * 1000,
        "peer start ms": median["peer start"] * 1000,
        "stop ms": median["ours stop, kept open"] * 1000,
    }


def server_import(rounds: int) -> dict[str, float]:
    """What importing the server adds once the plugin and the in-process fake are loaded,
    side by side with ``import http.server`` (the standard module it builds on, which is
    most of its cost) in the same state. Bytecode writing is allowed and a warm-up run
    comes first, as after a user's ``pip install``: with ``PYTHONDONTWRITEBYTECODE`` set
    and no cache, the timing is mostly the compiler's (9 ms of the 25 measured in CI)."""
    loaded = "import time, pytest_qstash_tasks._plugin, pytest_qstash_tasks._transports.in_process;"
    ours = loaded + "t = time.perf_counter(); import pytest_qstash_tasks._transports.server;"
    peer = loaded + "t = time.perf_counter(); import http.server;"
    tail = "print(time.perf_counter() - t)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    def once(code: str) -> float:
        command = [sys.executable, "-c", code + tail]
        run = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
        return float(run.stdout)

    once(ours)
    ours_runs, peer_runs = [], []
    for _ in range(rounds):
        ours_runs.append(once(ours))
        peer_runs.append(once(peer))
    ours_ms = statistics.median(ours_runs) * 1000
    peer_ms = statistics.median(peer_runs) * 1000
    return {"ratio": ours_ms / peer_ms, "ours_ms": ours_ms, "peer_ms": peer_ms}


def standalone_start_vs_pydantic(rounds: int, *, dev: bool = False) -> dict[str, float]:
    """``qstash-tasks-fake serve`` (with ``dev``: ``serve --dev``, on a free port given as
    ``QSTASH_DEV_PORT``), from process start to its URL line, side by side with
    ``python -c "import pydantic"`` (the one heavy dependency the package has): medians
    of wall time, the two interleaved."""
    serve = [sys.executable, "-m", "pytest_qstash_tasks", "serve", "--quiet"]
    serve += ["--dev"] if dev else ["--port", "0"]
    peer = [sys.executable, "-c", "import pydantic"]
    # Bytecode writing allowed (the warm-up writes it), as after a user's pip install:
    # with PYTHONDONTWRITEBYTECODE set, every start compiled each of the package's
    # modules, while pydantic's came compiled from its install.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if dev:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            env["QSTASH_DEV_PORT"] = str(probe.getsockname()[1])

    def to_url_line() -> float:
        started = time.perf_counter()
        process = subprocess.Popen(
            serve,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        took = time.perf_counter() - started
        process.terminate()
        process.communicate(timeout=10)
        assert line.startswith(b"http://127.0.0.1:"), line
        return took

    def import_pydantic() -> float:
        started = time.perf_counter()
        subprocess.run(peer, check=True, env=env)
        return time.perf_counter() - started

    to_url_line()  # bytecode written, files in the page cache: as after pip install
    ours, theirs = [], []
    for _ in range(rounds):
        theirs.append(import_pydantic())
        ours.append(to_url_line())
    ours_ms, peer_ms = statistics.median(ours) * 1000, statistics.median(theirs) * 1000
    return {"ratio": ours_ms / peer_ms, "ours_ms": ours_ms, "peer_ms": peer_ms}


def state_load_vs_json(rounds: int) -> dict[str, float]:
    """Loading ``serve --state``'s file of 10,000 delivered messages and 1,000 schedules
    into a fresh fake (reading the file, parsing it, building the state), side by side
    with ``json.load`` of the same file: the floor, since the file is JSON. Medians of
    CPU time, the two interleaved; each load goes into a fake made before the timing."""
    import datetime
    import gc
    import json
    import tempfile
    from pathlib import Path

    from pytest_qstash_tasks._core.control.state_file import restore, write_state

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "state.json"
        fake = QStashTasksServer(seed=1)
        with fake:
            client = httpx.Client(base_url=fake.base_url, headers=AUTH)
            batch = [{"destination": f"https://example.com/m{i}", "body": "x"} for i in range(100)]
            for _ in range(100):
                assert client.post("/v2/batch", json=batch).is_success
            for i in range(1_000):
                made = client.post(
                    f"/v2/schedules/https://example.com/s{i}", headers={"Upstash-Cron": "0 * * * *"}
                )
                assert made.is_success
            client.close()
            fake.clock.advance(datetime.timedelta(seconds=30))  # every message delivered
            write_state(fake, path)

        def ours() -> float:
            target = QStashTasksServer(seed=1)
            gc.collect()
            started = time.process_time()
            restore(target, path.read_bytes())
            took = time.process_time() - started
            target.stop()
            return took

        def peer() -> float:
            gc.collect()
            started = time.process_time()
            with path.open("rb") as stream:
                json.load(stream)
            return time.process_time() - started

        ours()  # the state modules imported, as in the command, which imports them at start
        mine, theirs = [], []
        for _ in range(rounds):
            theirs.append(peer())
            mine.append(ours())
        size = path.stat().st_size
    ours_ms, peer_ms = statistics.median(mine) * 1000, statistics.median(theirs) * 1000
    return {"ratio": ours_ms / peer_ms, "ours_ms": ours_ms, "peer_ms": peer_ms, "mb": size / 1e6}


def page_vs_json(rounds: int, per_round: int = 20) -> dict[str, float]:
    """The page at ``/_fake/ui`` opened on a fake of 10,000 messages, as a browser asks
    for it: the page, the reads of its overview (the clock, the problems, the first
    message, the first DLQ entry, the schedules), then a click on Messages (the clock,
    the newest 50); side by side with the same JSON reads alone. CPU time of client and
    server together (both in this process), medians of interleaved rounds. The messages
    view alone (the page and its two reads against the two reads) is information."""
    fake = QStashTasksServer(control=True, max_identical_requests=10**9)
    for number in range(10_000):
        fake.add(f"msg_{number:05}", count=1, states=["delivered"])
    fake.start()
    session = requests.Session()
    overview = ["/_fake/clock", "/_fake/problems", "/_fake/messages?count=1", "/v2/dlq?count=1"]
    messages = ["/_fake/clock", "/_fake/messages?count=50"]
    json_paths = [*overview, "/v2/schedules", *messages]

    def reads(paths: list[str]) -> Callable[[], float]:
        def run() -> float:
            started = time.process_time()
            for _ in range(per_round):
                for path in paths:
                    answer = session.get(fake.base_url + path, headers=AUTH, timeout=5)
                    assert answer.status_code == 200, answer.text
            return time.process_time() - started

        return run

    sides = {
        "page": reads(["/_fake/ui", *json_paths]),
        "json": reads(json_paths),
        "view": reads(["/_fake/ui", *messages]),
        "view_json": reads(messages),
    }
    times: dict[str, list[float]] = {name: [] for name in sides}
    for side in sides.values():
        side()  # warm
    try:
        for _ in range(rounds):
            for name, side in sides.items():
                times[name].append(side())
    finally:
        session.close()
        fake.stop()
    ms = {name: statistics.median(values) * 1000 / per_round for name, values in times.items()}
    return {
        "ratio": ms["page"] / ms["json"],
        "ours_ms": ms["page"],
        "peer_ms": ms["json"],
        "view_ratio": ms["view"] / ms["view_json"],
    }
