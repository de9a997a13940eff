"""Deliveries the code under test receives: signed requests to a handler, a WSGI or ASGI
app, or a local server, driven by the fake's clock, with the tasks endpoint reporting
what the receiver answered. Publishing goes through the official SDK, through each
transport, unless a test says otherwise."""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import json
import os
import re
import ssl
import sys
import threading
import time
import warnings
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import flask
import jwt
import pytest
from fastapi import FastAPI
from fastapi import Request as FastAPIRequest
from qstash import QStash, Receiver
from qstash.errors import SignatureError
from qstash.receiver import verify_with_key
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

from pytest_qstash_tasks import DeliveryRequest, QStashTasksFake, QStashTasksMock
from pytest_qstash_tasks._core.engine.signing import (
    DEFAULT_CURRENT_SIGNING_KEY,
    DEFAULT_NEXT_SIGNING_KEY,
    derived_key,
)
from tests.helpers import client_for

HOOK = "https://app.example.com/hook"
Sdk = Callable[..., QStash]


@pytest.fixture
def client(any_fake: QStashTasksFake, sdk: Sdk) -> QStash:
    return sdk(any_fake.token, base_url=any_fake.base_url)


def verifier(fake: QStashTasksFake) -> Receiver:
    return Receiver(fake.current_signing_key, fake.next_signing_key)


# -- signing ---------------------------------------------------------------------------


def test_the_default_keys_are_fixed_and_in_env(any_fake: QStashTasksFake) -> None:
    assert derived_key("pytest-qstash-tasks current signing key") == DEFAULT_CURRENT_SIGNING_KEY
    assert derived_key("pytest-qstash-tasks next signing key") == DEFAULT_NEXT_SIGNING_KEY
    assert any_fake.current_signing_key == DEFAULT_CURRENT_SIGNING_KEY
    env = any_fake.env
    assert env["QSTASH_CURRENT_SIGNING_KEY"] == any_fake.current_signing_key
    assert env["QSTASH_NEXT_SIGNING_KEY"] == any_fake.next_signing_key
    assert (env["QSTASH_URL"], env["QSTASH_TOKEN"]) == (any_fake.base_url, any_fake.token)


def test_sign_verifies_with_the_sdk_and_with_pyjwt(any_fake: QStashTasksFake) -> None:
    body = '{"order": 7}'
    signature = any_fake.sign(body, HOOK)
    verifier(any_fake).verify(signature=signature, body=body, url=HOOK)
    claims = jwt.decode(
        signature,
        any_fake.current_signing_key,
        algorithms=["HS256"],
        issuer="Upstash",
        options={"require": ["iss", "sub", "exp", "nbf", "iat", "jti"]},
    )
    assert claims["sub"] == HOOK
    assert claims["exp"] - claims["nbf"] == 300
    assert abs(claims["iat"] - time.time()) < 5
    assert re.fullmatch(r"jwt_\d{12}[0-9a-f]{12}", claims["jti"])
    # Compact JSON, as QStash signs (its server is written in Go).
    payload = signature.split(".")[1]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    assert decoded == json.dumps(claims, separators=(",", ":")).encode()
    digest = base64.urlsafe_b64encode(hashlib.sha256(body.encode()).digest()).decode()
    assert claims["body"] == digest.rstrip("=")
    key = any_fake.current_signing_key
    with pytest.raises(SignatureError, match="Invalid body hash"):
        verify_with_key(key, signature=signature, body=body + " ", url=HOOK)
    with pytest.raises(SignatureError, match="Invalid subject"):
        verify_with_key(key, signature=signature, body=body, url=HOOK + "/other")
    with pytest.raises(SignatureError, match="Signature verification failed"):
        verify_with_key(any_fake.next_signing_key, signature=signature, body=body, url=HOOK)


@pytest.mark.parametrize("library", ["time_machine", "freezegun"])
def test_signatures_verify_under_time_machine_and_freezegun(library: str) -> None:
    fake = QStashTasksMock()
    if library == "time_machine":
        import time_machine

        travel: Any = time_machine.travel("2031-05-01T12:00:00Z", tick=False)
    else:
        import freezegun

        travel = freezegun.freeze_time("2031-05-01T12:00:00Z")
    with travel:
        signature = fake.sign(b"x", HOOK)
        verifier(fake).verify(signature=signature, body="x", url=HOOK)
        claims = jwt.decode(signature, options={"verify_signature": False})
        frozen = datetime.datetime(2031, 5, 1, 12, tzinfo=datetime.timezone.utc).timestamp()
        assert claims["iat"] == frozen


def test_rotating_the_keys_keeps_old_receivers_verifying() -> None:
    fake = QStashTasksMock()
    before = verifier(fake)  # configured with the keys before the rotation
    first = (fake.current_signing_key, fake.next_signing_key)
    fake.rotate_signing_keys()
    assert fake.current_signing_key == first[1]
    assert fake.next_signing_key not in first
    before.verify(signature=fake.sign("b", HOOK), body="b", url=HOOK)  # via the next key
    fake.rotate_signing_keys()
    with pytest.raises(SignatureError):
        before.verify(signature=fake.sign("b", HOOK), body="b", url=HOOK)
    fake.reset()
    assert (fake.current_signing_key, fake.next_signing_key) == first


APP_KEYS = {
    "QSTASH_CURRENT_SIGNING_KEY": "sig_" + "c" * 28,
    "QSTASH_NEXT_SIGNING_KEY": "sig_" + "n" * 28,
}


@pytest.mark.parametrize("fixture", ["qstash_tasks", "qstash_tasks_server"])
def test_the_fixtures_sign_with_the_keys_in_the_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fixture: str
) -> None:
    # An app that builds its Receiver at import, from the environment CI or pytest.ini set.
    for name, value in APP_KEYS.items():
        monkeypatch.setenv(name, value)
    pytester.makepyfile(
        f"""
        import os

        from qstash import QStash, Receiver

        RECEIVER = Receiver(
            current_signing_key=os.environ["QSTASH_CURRENT_SIGNING_KEY"],
            next_signing_key=os.environ["QSTASH_NEXT_SIGNING_KEY"],
        )
        HOOK = "https://app.example.com/hook"

        def handler(delivery):
            RECEIVER.verify(signature=delivery.header("Upstash-Signature"),
                            body=delivery.text, url=HOOK)
            return 200

        def test_it({fixture}):
            fake = {fixture}
            assert fake.current_signing_key == os.environ["QSTASH_CURRENT_SIGNING_KEY"]
            assert fake.next_signing_key == os.environ["QSTASH_NEXT_SIGNING_KEY"]
            fake.destination(HOOK).deliver_to(handler)
            QStash(fake.token, base_url=fake.base_url).message.publish(url=HOOK, body="x")
            fake.clock.advance(1_000)
            assert [a.status for a in fake.deliveries] == [200]
        """
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=1)


def test_a_bad_signing_key_in_the_environment_is_named(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QSTASH_CURRENT_SIGNING_KEY", "sig_short")
    pytester.makepyfile("def test_it(qstash_tasks):\n    pass\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*$QSTASH_CURRENT_SIGNING_KEY must be at least 32 bytes long, like QStash's "
            "(sig_ and 28 characters): the SDK's Receiver (PyJWT) refuses a shorter one; "
            "got 'sig_short'*"
        ]
    )


def test_keys_are_settable_and_checked() -> None:
    key_a, key_b = "sig_" + "a" * 28, "sig_" + "b" * 28
    fake = QStashTasksMock(current_signing_key=key_a, next_signing_key=key_b)
    assert fake.env["QSTASH_CURRENT_SIGNING_KEY"] == key_a
    verifier(fake).verify(signature=fake.sign("x", HOOK), body="x", url=HOOK)
    blanks = "must be a non-empty str without blanks, got"
    refusals = [
        (
            {"next_signing_key": DEFAULT_CURRENT_SIGNING_KEY},
            "current_signing_key and next_signing_key must differ",
        ),
        ({"next_signing_key": ""}, f"next_signing_key {blanks} ''"),
        # As read from a file or an env file: the newline, or a blank inside, is kept.
        (
            {"current_signing_key": key_a + "\n"},
            f"current_signing_key {blanks} {key_a + chr(10)!r}",
        ),
        (
            {"current_signing_key": "sig_ " + "a" * 28},
            f"current_signing_key {blanks} 'sig_ {'a' * 28}'",
        ),
    ]
    for arguments, refusal in refusals:
        with pytest.raises(ValueError) as raised:  # noqa: PT011 (the whole text, below)
            QStashTasksMock(**arguments)
        assert str(raised.value) == refusal
    with pytest.raises(ValueError, match="must be at least 32 bytes long, like QStash's"):
        QStashTasksMock(current_signing_key="sig_short")
    with pytest.raises(TypeError, match="sign\\(\\) takes the body as bytes or str, got int"):
        fake.sign(1, HOOK)  # type: ignore[arg-type]


# -- delivering to the test's own receivers --------------------------------------------


def test_a_handler_gets_signed_deliveries_and_its_answers_drive_retries(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    received: list[DeliveryRequest] = []

    def handler(delivery: DeliveryRequest) -> tuple[int, str]:
        signature = delivery.header("Upstash-Signature") or ""
        verifier(any_fake).verify(signature=signature, body=delivery.text, url=delivery.url)
        received.append(delivery)
        return (503, "database down") if len(received) == 1 else (200, "ok")

    any_fake.destination(HOOK).deliver_to(handler)
    message_id = client.message.publish_json(
        url=HOOK, body={"order": 7}, headers={"X-Tenant": "t1"}, method="PUT"
    ).message_id
    assert received == []  # nothing until the clock reaches the first attempt
    any_fake.clock.advance(1_000)
    (first,) = received
    assert (first.method, first.url, first.json()) == ("PUT", HOOK, {"order": 7})
    assert first.header("Upstash-Message-Id") == message_id
    assert first.header("Upstash-Retried") == "0"
    assert first.header("User-Agent") == "Upstash-QStash"
    assert first.header("X-Tenant") == "t1"
    assert first.header("Content-Type") == "application/json"
    assert first.header("Upstash-Caller-Ip") == "127.0.0.1"
    assert first.header("X-Not-Sent") is None
    # QStash's own headers, in its spelling (a server that keeps the case shows it).
    ours = [n for n, _ in first.headers if n.lower().startswith(("upstash-", "user-agent"))]
    assert ours == [
        "User-Agent",
        "Upstash-Message-Id",
        "Upstash-Retried",
        "Upstash-Caller-Ip",
        "Upstash-Signature",
    ]
    (attempt,) = any_fake.deliveries
    assert (attempt.json(), attempt.header("x-tenant"), attempt.header("X-Not-Sent")) == (
        {"order": 7},
        "t1",
        None,
    )
    (task,) = any_fake.tasks(message_id)
    assert (task.state, task.retried, task.error) == ("error", 1, "HTTP status 503: database down")
    any_fake.clock.advance(60_000)
    assert [d.header("Upstash-Retried") for d in received] == ["0", "1"]
    (task,) = any_fake.tasks(message_id)
    assert (task.state, task.retried) == ("delivered", 1)
    attempts = any_fake.assert_delivered(HOOK, times=2)
    assert [(a.status, a.answer_body, a.retried) for a in attempts] == [
        (503, b"database down", 0),
        (200, b"ok", 1),
    ]
    assert attempts[0].at == any_fake.clock.start + 200
    assert attempts[0].receiver.startswith("the handler ")


def test_an_attempt_interrupted_in_the_receiver_is_due_again(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    calls: list[str] = []

    def handler(delivery: DeliveryRequest) -> int:
        calls.append(delivery.header("Upstash-Retried") or "")
        if len(calls) == 1:
            raise KeyboardInterrupt  # Ctrl-C while the app receives: not the app's answer
        return 200

    any_fake.destination(HOOK).deliver_to(handler)
    message_id = client.message.publish(url=HOOK, body="x").message_id
    start = any_fake.clock.now
    with pytest.raises(KeyboardInterrupt):
        any_fake.clock.advance(1_000)
    assert calls == ["0"]
    assert any_fake.clock.now == start + 200  # the move stopped at the attempt's instant
    (task,) = any_fake.tasks(message_id)  # the next look at the fake makes it again
    assert calls == ["0", "0"]  # the same attempt
    assert (task.state, task.retried) == ("active", 0)
    any_fake.clock.advance(1_000)
    assert [d.at for d in any_fake.deliveries] == [start + 200]  # recorded once
    (task,) = any_fake.tasks(message_id)
    assert (task.state, task.retried) == ("delivered", 0)


def test_retries_run_out_to_failed(any_fake: QStashTasksFake, client: QStash) -> None:
    any_fake.destination("https://app.example.com/*").deliver_to(lambda delivery: 500)
    message_id = client.message.publish(url=HOOK, body="x", retries=2).message_id
    any_fake.clock.advance(24 * 3600 * 1000)
    (task,) = any_fake.tasks(message_id)
    assert (task.state, task.retried, task.error) == ("failed", 2, "HTTP status 500")
    assert len(any_fake.assert_delivered(status=500, times=3)) == 3


def test_scripted_answers_come_before_the_receiver(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    calls: list[tuple[str, str | None]] = []
    any_fake.destination(HOOK).answers(500).deliver_to(
        lambda d: calls.append((d.text, d.header("Upstash-Retried"))) or 200
    )
    message_id = client.message.publish(url=HOOK, body="x").message_id
    any_fake.clock.advance(60_000)
    # The first attempt met the scripted 500, the retry the handler.
    assert calls == [("x", "1")]
    assert [used.outcome for used in any_fake.destination(HOOK).used] == [500]
    (task,) = any_fake.tasks(message_id)
    assert (task.state, task.retried) == ("delivered", 1)


def test_a_url_group_delivers_to_each_endpoint_with_its_topic_name(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    received: list[DeliveryRequest] = []
    any_fake.destination("https://*").deliver_to(lambda d: received.append(d) or 204)
    endpoints = [{"url": "https://a.example.com/in"}, {"url": "https://b.example.com/in"}]
    client.url_group.upsert_endpoints(url_group="orders", endpoints=endpoints)  # type: ignore[arg-type]
    client.message.publish(url_group="orders", body="hi")
    any_fake.clock.advance(1_000)
    assert sorted(d.url for d in received) == [
        "https://a.example.com/in",
        "https://b.example.com/in",
    ]
    assert {d.header("Upstash-Topic-Name") for d in received} == {"orders"}
    assert "Upstash-Topic-Name" in [name for name, _ in received[0].headers]
    for delivery in received:
        verifier(any_fake).verify(
            signature=delivery.header("Upstash-Signature") or "", body="hi", url=delivery.url
        )


def test_a_receiver_that_raises_fails_the_attempt_and_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from qstash import QStash

        def broken(delivery):
            raise KeyError("order_id")

        def test_it(qstash_tasks):
            qstash_tasks.destination("https://app.example.com/hook").deliver_to(broken)
            client = QStash(qstash_tasks.token, base_url=qstash_tasks.base_url)
            message_id = client.message.publish(url="https://app.example.com/hook", body="x").message_id
            qstash_tasks.clock.advance(1_000)
            (task,) = qstash_tasks.tasks(message_id)
            assert (task.state, task.error) == ("error", "HTTP status 500")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "E*1. the handler test_a_receiver_that_raises_fails_the_attempt_and_the_test.broken "
            "raised while receiving message msg_* (retried 0), which counts as a failed attempt "
            "(HTTP status 500):",
        ]
    )
    # The traceback, a line each, from the user's own frame on:
    result.stdout.re_match_lines(
        [
            r'^E\s+File ".*test_a_receiver_that_raises_fails_the_attempt_and_the_test\.py", '
            r"line 4, in broken$",
            r'^E\s+raise KeyError\("order_id"\)$',
            r"^E\s+KeyError: 'order_id'$",
        ]
    )


@pytest.mark.parametrize(
    ("answer", "complaint"),
    [
        (None, "returned None: return an HTTP status (100-599) or (status, body)"),
        ("ok", "returned 'ok': return an HTTP status"),
        ((200, 5), "returned a body of type int: use str or bytes"),
        (99, "returned 99: return an HTTP status (100-599)"),
        (600, "returned 600: return an HTTP status (100-599)"),
    ],
)
def test_a_handler_answer_that_is_no_status_is_a_receiver_bug(answer: Any, complaint: str) -> None:
    fake = QStashTasksMock().start()
    try:
        fake.destination(HOOK).deliver_to(lambda delivery: answer)
        QStash(fake.token, base_url=fake.base_url).message.publish(url=HOOK, body="x", retries=0)
        fake.clock.advance(1_000)
    finally:
        fake.stop()
    (problem,) = fake.problems()
    assert complaint in problem
    assert fake.deliveries[0].error == "HTTP status 500"


def test_the_statuses_at_both_ends_are_answers(any_fake: QStashTasksFake, client: QStash) -> None:
    statuses = iter([100, 599])
    any_fake.destination(HOOK).deliver_to(lambda delivery: next(statuses))
    client.message.publish(url=HOOK, body="x", retries=1)
    any_fake.clock.advance(60_000)
    assert [a.status for a in any_fake.deliveries] == [100, 599]
    assert any_fake.problems() == []


def test_a_2xx_delivers_and_nothing_else_does(any_fake: QStashTasksFake, client: QStash) -> None:
    any_fake.destination("https://app.example.com/*").deliver_to(
        lambda delivery: int(delivery.url.rsplit("/", 1)[1])
    )
    statuses = (199, 200, 299, 300)
    ids = [
        client.message.publish(url=f"https://app.example.com/{status}", body="x", retries=0)
        for status in statuses
    ]
    any_fake.clock.advance(1_000)
    outcomes = [any_fake.tasks(published.message_id)[0] for published in ids]
    assert [(task.state, task.error) for task in outcomes] == [
        ("failed", "HTTP status 199"),
        ("delivered", ""),
        ("delivered", ""),
        ("failed", "HTTP status 300"),
    ]


class CallableHandler:
    def __call__(self, delivery: DeliveryRequest) -> int:
        return 200


def _moduleless_handler() -> Callable[[DeliveryRequest], int]:
    scope: dict[str, Any] = {}
    exec("def handler(delivery):\n    return 200", scope)  # no __name__: __module__ is None
    handler: Callable[[DeliveryRequest], int] = scope["handler"]
    return handler


@pytest.mark.parametrize(
    ("target", "named"),
    [
        (CallableHandler(), f"the handler {__name__}.CallableHandler"),
        (_moduleless_handler(), "the handler handler"),
        ((200).__add__, "the handler int.__add__"),  # no __module__ at all
        (lambda delivery, *args, **options: 200, f"the handler {__name__}.<lambda>"),
    ],
    ids=["callable-object", "no-module", "no-module-attribute", "var-arguments"],
)
def test_a_receiver_is_named_by_its_module_and_name(target: Any, named: str) -> None:
    destination = QStashTasksMock().destination(HOOK).deliver_to(target)
    assert destination.receiver == named


@pytest.mark.parametrize(
    "target",
    [42, "ftp://x", "not a url", lambda a, b, c: None, object()],
    ids=["int", "ftp", "text", "three-sync-args", "object"],
)
def test_a_target_that_is_no_receiver_is_refused_when_scripted(target: Any) -> None:
    with pytest.raises(TypeError) as raised:
        QStashTasksMock().destination(HOOK).deliver_to(target)
    assert str(raised.value) == (
        "deliver_to() takes a handler (a callable of one argument, the DeliveryRequest, "
        "returning a status or (status, body)), a WSGI app (environ, start_response), an "
        "ASGI app (async: scope, receive, send), 'http' (real HTTP to the message's URL) "
        f"or a loopback base URL such as 'http://127.0.0.1:8000'; got {target!r}"
    )


def test_real_http_goes_to_loopback_only_unless_the_test_opts_in() -> None:
    destination = QStashTasksMock().destination(HOOK)
    with pytest.raises(ValueError, match="real HTTP deliveries go to loopback addresses only"):
        destination.deliver_to("https://app.example.com")
    destination.deliver_to("https://app.example.com", allow_remote=True)
    assert destination.receiver == "real HTTP to https://app.example.com"


def test_http_to_a_remote_message_url_is_a_teardown_problem() -> None:
    fake = QStashTasksMock().start()
    try:
        fake.destination(HOOK).deliver_to("http")
        QStash(fake.token, base_url=fake.base_url).message.publish(url=HOOK, body="x", retries=0)
        fake.clock.advance(1_000)
    finally:
        fake.stop()
    (problem,) = fake.problems()
    assert "real HTTP deliveries go to loopback addresses only" in problem
    assert "'app.example.com'" in problem


# -- WSGI and ASGI apps, in-process --------------------------------------------------


def flask_app(fake: QStashTasksFake, seen: list[dict[str, Any]]) -> Any:
    app = flask.Flask("receiver")

    @app.post("/hook")
    def hook() -> Any:
        body = flask.request.get_data(as_text=True)
        verifier(fake).verify(
            signature=flask.request.headers["Upstash-Signature"], body=body, url=HOOK
        )
        seen.append({"retried": flask.request.headers["Upstash-Retried"], "body": body})
        return ("try later", 500) if len(seen) == 1 else ("", 204)

    return app


def fastapi_app(fake: QStashTasksFake, seen: list[dict[str, Any]]) -> Any:
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: FastAPIRequest) -> Any:
        body = (await request.body()).decode()
        verifier(fake).verify(signature=request.headers["upstash-signature"], body=body, url=HOOK)
        seen.append({"retried": request.headers["upstash-retried"], "body": body})
        await asyncio.sleep(0)
        return PlainTextResponse(
            "try later" if len(seen) == 1 else "", 500 if len(seen) == 1 else 200
        )

    return app


@pytest.mark.parametrize("make_app", [flask_app, fastapi_app], ids=["flask-wsgi", "fastapi-asgi"])
def test_an_app_receives_publish_retry_delivered(
    any_fake: QStashTasksFake, client: QStash, make_app: Callable[..., Any]
) -> None:
    seen: list[dict[str, Any]] = []
    any_fake.destination(HOOK).deliver_to(make_app(any_fake, seen))
    message_id = client.message.publish_json(url=HOOK, body={"order": 7}).message_id
    any_fake.clock.advance(1_000)
    assert any_fake.tasks(message_id)[0].error == "HTTP status 500: try later"
    any_fake.clock.advance(60_000)
    assert seen == [
        {"retried": "0", "body": '{"order": 7}'},
        {"retried": "1", "body": '{"order": 7}'},
    ]
    (task,) = any_fake.tasks(message_id)
    assert (task.state, task.retried) == ("delivered", 1)


def test_a_wsgi_app_gets_what_a_wsgi_server_gives_it(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    environs: list[dict[str, Any]] = []
    closed: list[bool] = []

    class Answer(list[bytes]):
        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        environs.append({**environ, "wsgi.input": environ["wsgi.input"].read()})
        write = start_response("201 Created", [("Content-Type", "text/plain")])
        write(b"made ")  # the legacy write() of PEP 3333, before the iterable
        return Answer([b"it"])

    any_fake.destination("http*").deliver_to(app)
    client.message.publish(
        url="https://shop.example.com/orders/caf%C3%A9?x=1&y=%20",
        body="hello",
        content_type="text/plain",
        headers={"X-Tenant": "t1"},
    )
    client.message.publish(url="http://shop.example.com:8080", body="")
    # A forwarded Content-Length is not delivered: CONTENT_LENGTH is the body's own.
    client.message.publish(
        url="http://shop.example.com", body="", method="PUT", headers={"Content-Length": "0"}
    )
    any_fake.clock.advance(1_000)
    first, second, third = environs
    assert "HTTP_CONTENT_LENGTH" not in third
    assert {key: value for key, value in first.items() if not key.startswith("HTTP_")} == {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/orders/café".encode().decode("latin-1"),
        "QUERY_STRING": "x=1&y=%20",
        "SERVER_NAME": "shop.example.com",
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "text/plain",
        "CONTENT_LENGTH": "5",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.input": b"hello",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    assert first["HTTP_X_TENANT"] == "t1"
    assert first["HTTP_UPSTASH_RETRIED"] == "0"
    # The Host a client sends, which apps read before SERVER_NAME.
    assert [e["HTTP_HOST"] for e in environs] == [
        "shop.example.com",
        "shop.example.com:8080",
        "shop.example.com",
    ]
    assert "HTTP_CONTENT_TYPE" not in first
    assert "HTTP_CONTENT_LENGTH" not in first
    assert (second["PATH_INFO"], second["SERVER_PORT"], second["wsgi.url_scheme"]) == (
        "/",
        "8080",
        "http",
    )
    assert (third["REQUEST_METHOD"], third["SERVER_PORT"], third["CONTENT_LENGTH"]) == (
        "PUT",
        "80",
        "0",
    )
    assert closed == [True, True, True]  # the server's duty: close() what the app returned
    assert [(a.status, a.answer_body) for a in any_fake.deliveries] == [(201, b"made it")] * 3
    attempt = any_fake.deliveries[0]
    assert attempt.receiver == f"the WSGI app {__name__}.{app.__qualname__}"
    assert (attempt.header("x-tenant"), attempt.header("X-TENANT")) == ("t1", "t1")
    assert attempt.header("X-Missing") is None
    assert attempt.body == b"hello"


def assert_one_receiver_bug(fake: QStashTasksFake, app: str, message_id: str, error: str) -> None:
    """The one teardown problem of an app that raised: its first line, and the
    traceback's last line ending it (its trailing newline taken off)."""
    (problem,) = fake.problems()
    assert problem.splitlines()[0] == (
        f"{app} raised while receiving message {message_id} (retried 0), which counts as a "
        "failed attempt (HTTP status 500):"
    )
    assert problem.endswith("\n" + error)


def test_a_wsgi_app_that_returns_a_plain_list_or_never_starts_its_answer(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    def plain(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("202 Accepted", [])
        return [b"ok"]

    def silent(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        return [b"no status"]

    any_fake.destination(HOOK).deliver_to(plain)
    any_fake.destination(HOOK + "/silent").deliver_to(silent)
    client.message.publish(url=HOOK, body="x")
    message_id = client.message.publish(url=HOOK + "/silent", body="x", retries=0).message_id
    any_fake.clock.advance(1_000)
    assert [(a.status, a.answer_body) for a in any_fake.deliveries] == [(202, b"ok"), (None, b"")]
    assert any_fake.tasks(message_id)[0].error == "HTTP status 500"
    name = f"{__name__}.{test_a_wsgi_app_that_returns_a_plain_list_or_never_starts_its_answer.__qualname__}.<locals>.silent"
    error = f"TypeError: the WSGI app {name} returned without calling start_response"
    assert_one_receiver_bug(any_fake, f"the WSGI app {name}", message_id, error)
    any_fake.reset()


def test_an_asgi_app_gets_what_an_asgi_server_gives_it(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    scopes: list[dict[str, Any]] = []
    received: list[list[dict[str, Any]]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(scope)
        messages = [await receive()]
        await send({"type": "http.response.start", "status": 207, "headers": []})
        await send({"type": "http.response.body", "body": b"part ", "more_body": True})
        await send({"type": "http.response.body", "body": b"two"})
        messages.append(await receive())  # the answer is out: the client is gone
        received.append(messages)

    any_fake.destination("http*").deliver_to(app)
    client.message.publish(
        url="https://shop.example.com/orders/caf%C3%A9?x=1",
        body="hello",
        content_type="text/plain",
        headers={"X-Tenant": "t1"},
    )
    client.message.publish(url="http://shop.example.com:8080", body="", method="DELETE")
    client.message.publish(url="https://user:pw@café.example:8443/", body="")
    client.message.publish(url="https://café..example/", body="")  # IDNA refuses it
    any_fake.clock.advance(1_000)
    first, second, *_ = scopes
    # A server passes on what the client sent, Host first, framing headers included.
    assert [scope["headers"][:2] for scope in scopes] == [
        [(b"host", b"shop.example.com"), (b"content-length", b"5")],
        [(b"host", b"shop.example.com:8080"), (b"content-length", b"0")],
        [(b"host", b"xn--caf-dma.example:8443"), (b"content-length", b"0")],
        [(b"host", "café..example".encode()), (b"content-length", b"0")],
    ]
    headers = dict(first.pop("headers"))
    assert first == {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": "/orders/café",
        "raw_path": b"/orders/caf%C3%A9",
        "query_string": b"x=1",
        "root_path": "",
        "server": ("shop.example.com", 443),
        "client": ("127.0.0.1", 0),
        "state": {},
    }
    assert (headers[b"x-tenant"], headers[b"content-type"]) == (b"t1", b"text/plain")
    assert (second["method"], second["path"], second["raw_path"], second["server"]) == (
        "DELETE",
        "/",
        b"/",
        ("shop.example.com", 8080),
    )
    assert received[0] == [
        {"type": "http.request", "body": b"hello", "more_body": False},
        {"type": "http.disconnect"},
    ]
    assert [(a.status, a.answer_body) for a in any_fake.deliveries] == [(207, b"part two")] * 4


def test_an_asgi_app_that_streams_its_answer_or_never_starts_it(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    async def parts() -> Any:
        for part in (b"one ", b"two ", b"three"):
            await asyncio.sleep(0)  # where a server that saw the client go would stop it
            yield part

    async def stream(request: Any) -> StreamingResponse:
        return StreamingResponse(parts())

    # Under ASGI 2.3 Starlette listens for the client leaving while it streams: the
    # client is there until the last part is sent.
    streaming = Starlette(routes=[Route("/hook", stream, methods=["POST"])])

    async def bare_end(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"all", "more_body": True})
        await send({"type": "http.response.body"})  # the end, with no body of its own

    async def silent(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()

    any_fake.destination(HOOK).deliver_to(streaming)
    any_fake.destination(HOOK + "/bare").deliver_to(bare_end)
    any_fake.destination(HOOK + "/silent").deliver_to(silent)
    client.message.publish(url=HOOK, body="x")
    client.message.publish(url=HOOK + "/bare", body="x")
    message_id = client.message.publish(url=HOOK + "/silent", body="x", retries=0).message_id
    any_fake.clock.advance(1_000)
    assert [(a.status, a.answer_body) for a in any_fake.deliveries] == [
        (200, b"one two three"),
        (200, b"all"),
        (None, b""),
    ]
    assert any_fake.tasks(message_id)[0].error == "HTTP status 500"
    name = f"{__name__}.{test_an_asgi_app_that_streams_its_answer_or_never_starts_it.__qualname__}.<locals>.silent"
    error = f"TypeError: the ASGI app {name} returned without sending http.response.start"
    assert_one_receiver_bug(any_fake, f"the ASGI app {name}", message_id, error)
    any_fake.reset()


@pytest.mark.asyncio
async def test_an_asgi_app_is_delivered_to_from_inside_a_running_loop(
    any_fake: QStashTasksFake,
) -> None:
    seen: list[dict[str, Any]] = []
    any_fake.destination(HOOK).deliver_to(fastapi_app(any_fake, seen))
    client = QStash(any_fake.token, base_url=any_fake.base_url)
    message_id = client.message.publish(url=HOOK, body="x").message_id
    any_fake.clock.advance(61_000)  # in the test's running loop: must not deadlock
    assert [s["retried"] for s in seen] == ["0", "1"]
    assert any_fake.tasks(message_id)[0].state == "delivered"
    client.http._client.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() here")
def test_a_forked_child_delivers_from_inside_a_running_loop(
    qstash_tasks: QStashTasksFake, sdk: Sdk
) -> None:
    # A process forked after a delivery from inside a running loop (a fork server, as
    # mutmut's, or multiprocessing's "fork") has the loop that ran it, not its thread.
    client = sdk(qstash_tasks.token, base_url=qstash_tasks.base_url)

    async def handler(delivery: DeliveryRequest) -> int:
        await asyncio.sleep(0)
        return 200

    async def deliver(body: str) -> None:  # an async test's body
        client.message.publish(url=HOOK, body=body, timeout="2s")
        qstash_tasks.clock.advance(1_000)

    qstash_tasks.destination(HOOK).deliver_to(handler)
    asyncio.run(deliver("x"))
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() with threads
        pid = os.fork()
    if pid == 0:  # the child: report what its delivery got, and leave without cleanup
        try:
            asyncio.run(deliver("y"))
            outcome = repr([(a.status, a.error) for a in qstash_tasks.deliveries])
        except BaseException as error:  # the parent reports it
            outcome = repr(error)
        os.write(write, outcome.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        reported = pipe.read()
    os.waitpid(pid, 0)
    assert reported == repr([(200, None), (200, None)])
    assert [a.status for a in qstash_tasks.deliveries] == [200]  # the parent's own


def test_an_async_handler_and_a_slow_one(any_fake: QStashTasksFake, client: QStash) -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def handler(delivery: DeliveryRequest) -> tuple[int]:
        await asyncio.sleep(0.02)
        loops.append(asyncio.get_running_loop())
        return (202 if delivery.text == "x" else 500,)  # a status alone in a tuple

    any_fake.destination(HOOK).deliver_to(handler)
    client.message.publish(url=HOOK, body="x")
    slow = "https://slow.example.com/hook"
    any_fake.destination(slow).deliver_to(lambda delivery: time.sleep(0.3) or 200)
    slow_id = client.message.publish(url=slow, body="x", timeout="0s", retries=0).message_id
    client.message.publish(url=HOOK, body="x")
    any_fake.clock.advance(1_000)
    hooked = [a for a in any_fake.deliveries if a.url == HOOK]
    assert [(a.status, a.answer_body) for a in hooked] == [(202, b"")] * 2
    assert all(20 <= a.duration_ms < 2_000 for a in hooked)  # real time, in ms
    # One event loop for the test's thread: what an app keeps bound to it (a pool) works on.
    assert loops[0] is loops[1]
    (task,) = any_fake.tasks(slow_id)
    assert task.state == "failed"
    assert re.fullmatch(r"request timed out: the receiver took 0\.3\d* s, past 0 s", task.error)
    (slow_attempt,) = [a for a in any_fake.deliveries if a.url == slow]
    assert 300 <= slow_attempt.duration_ms < 2_000


async def sleepy(delivery: DeliveryRequest) -> int:
    await asyncio.sleep(3)  # past the message's timeout of 1 s
    return 200


def test_an_async_handler_past_its_timeout_is_stopped(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    any_fake.destination(HOOK).deliver_to(sleepy)
    message_id = client.message.publish(url=HOOK, body="x", timeout="1s", retries=0).message_id
    any_fake.clock.advance(1_000)
    (task,) = any_fake.tasks(message_id)
    assert (task.state, task.error) == ("failed", "request timed out: no answer within 1 s")
    assert 900 <= any_fake.deliveries[0].duration_ms < 2_500


def test_a_delivery_from_another_thread_closes_the_loop_it_ran_on(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def handler(delivery: DeliveryRequest) -> int:
        loops.append(asyncio.get_running_loop())
        return 200

    any_fake.destination(HOOK).deliver_to(handler)
    client.message.publish(url=HOOK, body="x")
    mover = threading.Thread(target=any_fake.clock.advance, args=(1_000,))
    mover.start()
    mover.join()
    # The thread may end any time: a loop left open would hold its sockets until exit.
    assert [loop.is_closed() for loop in loops] == [True]


@pytest.mark.asyncio
async def test_from_inside_a_running_loop_a_late_async_handler_is_stopped(
    qstash_tasks: QStashTasksFake, sdk: Sdk
) -> None:
    # The deliveries' own thread runs these (one for the process: one transport is enough).
    client = sdk(qstash_tasks.token, base_url=qstash_tasks.base_url)
    threads: list[threading.Thread] = []
    unblock = threading.Event()

    async def blocking(delivery: DeliveryRequest) -> int:
        threads.append(threading.current_thread())
        unblock.wait(5)  # a bug: it blocks its loop, so no timeout inside it can fire
        return 200

    qstash_tasks.destination(HOOK).deliver_to(sleepy)
    qstash_tasks.destination(HOOK + "/blocking").deliver_to(blocking)
    client.message.publish(url=HOOK, body="x", timeout="1s", retries=0)
    client.message.publish(url=HOOK + "/blocking", body="x", timeout="1s", retries=0)
    try:
        qstash_tasks.clock.advance(1_000)
    finally:
        unblock.set()
    late, blocked = qstash_tasks.deliveries
    assert [late.error, blocked.error] == ["request timed out: no answer within 1 s"] * 2
    assert 900 <= late.duration_ms < 1_800
    # Given up on a second past its timeout, from outside its loop.
    assert 1_800 <= blocked.duration_ms < 2_800
    # A thread named for what it does, which never keeps the process from exiting.
    assert [(t.name, t.daemon) for t in threads] == [("qstash-tasks-deliveries", True)]


def test_a_receiver_may_call_the_fake_while_it_receives(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    states: list[str] = []

    def handler(delivery: DeliveryRequest) -> int:
        # The receiver reads the message's own tasks through QStash, as apps do.
        message_id = delivery.header("Upstash-Message-Id")
        page = client.http.request(path=f"/v1/messages/{message_id}/tasks", method="GET")
        states.append(page["tasks"][0]["state"])
        return 200

    any_fake.destination(HOOK).deliver_to(handler)
    client.message.publish(url=HOOK, body="x")
    any_fake.clock.advance(1_000)
    assert states == ["active"]


def test_a_receiver_that_calls_the_fake_is_not_interrupted_by_the_next_attempt(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    events: list[str] = []

    def handler(delivery: DeliveryRequest) -> int:
        events.append(f"in {delivery.text}")
        any_fake.tasks(delivery.header("Upstash-Message-Id") or "")  # runs what is due...
        events.append(f"out {delivery.text}")
        return 200

    any_fake.destination(HOOK).deliver_to(handler)
    client.message.publish(url=HOOK, body="1")
    client.message.publish(url=HOOK, body="2")  # due at the same time
    any_fake.clock.advance(1_000)
    # ...but not inside the delivery under way: the fake delivers one at a time.
    assert events == ["in 1", "out 1", "in 2", "out 2"]


def test_patch_sleep_and_the_wall_clock_run_deliveries(sdk: Sdk) -> None:
    received: list[str] = []
    with QStashTasksMock(patch_sleep=True) as fake:
        fake.destination(HOOK).deliver_to(lambda d: received.append("sleep") or 200)
        sdk(fake.token, base_url=fake.base_url).message.publish(url=HOOK, body="x")
        time.sleep(1)  # moves the fake's clock: the attempt runs in this thread, now
        assert received == ["sleep"]
    with QStashTasksMock(clock="wall") as fake:
        fake.destination(HOOK).deliver_to(lambda d: received.append("wall") or 200)
        client = sdk(fake.token, base_url=fake.base_url)
        message_id = client.message.publish(url=HOOK, body="x").message_id
        time.sleep(0.25)  # real time: the wall clock's thread makes the attempt
        assert fake.tasks(message_id)[0].state in ("active", "delivered")
        assert received == ["sleep", "wall"]


# -- real HTTP to a local server -------------------------------------------------------


@pytest.fixture
def local_server() -> Any:
    """A receiver on a loopback port: the app under test, as a real server."""
    received: list[tuple[str, dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, dict(self.headers), body))
            self.send_response(200 if len(received) > 1 else 502)
            self.send_header("Content-Length", "3")
            self.end_headers()
            self.wfile.write(b"bad")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.received = received  # type: ignore[attr-defined]
    yield server
    server.shutdown()
    server.server_close()


def test_real_http_to_a_local_server(
    any_fake: QStashTasksFake, client: QStash, local_server: Any
) -> None:
    port = local_server.server_address[1]
    any_fake.destination("https://app.example.com/*").deliver_to(f"http://127.0.0.1:{port}")
    message_id = client.message.publish(url=HOOK + "?tenant=7", body="payload").message_id
    local = f"http://127.0.0.1:{port}/direct/caf%C3%A9"
    any_fake.destination(f"http://127.0.0.1:{port}/direct/*").deliver_to("http")
    client.message.publish(url=local, body="direct")
    any_fake.clock.advance(61_000)
    paths = sorted(path for path, _, _ in local_server.received)
    assert paths == ["/direct/caf%C3%A9", "/hook?tenant=7", "/hook?tenant=7"]
    _, headers, body = next(r for r in local_server.received if r[0].startswith("/hook"))
    assert body == b"payload"
    verifier(any_fake).verify(
        signature=headers["Upstash-Signature"], body="payload", url=HOOK + "?tenant=7"
    )
    (task,) = any_fake.tasks(message_id)
    assert task.state == "delivered"
    assert any_fake.deliveries[0].receiver == f"real HTTP to http://127.0.0.1:{port}"
    direct = next(a for a in any_fake.deliveries if "/direct/" in a.url)
    assert direct.receiver == "real HTTP to the message's URL"


def test_forwarded_framing_headers_are_not_delivered(
    any_fake: QStashTasksFake, client: QStash, local_server: Any
) -> None:
    port = local_server.server_address[1]
    any_fake.destination(HOOK).deliver_to(f"http://127.0.0.1:{port}")
    client.message.publish(
        url=HOOK,
        body="payload",
        headers={"Content-Length": "999", "Transfer-Encoding": "chunked", "Host": "x.example"},
        retries=0,
    )
    any_fake.clock.advance(1_000)
    ((_, headers, body),) = local_server.received
    assert body == b"payload"
    assert (headers["Content-Length"], headers["Host"]) == ("7", f"127.0.0.1:{port}")
    assert "Transfer-Encoding" not in headers
    (attempt,) = any_fake.deliveries
    assert attempt.status == 502  # the receiver's answer, not a timeout
    assert [attempt.header(name) for name in ("Content-Length", "Transfer-Encoding", "Host")] == [
        None
    ] * 3
    # What was published keeps them: a message shows them as forwarded.
    (message,) = any_fake.published
    assert message.forwarded_headers["Content-Length"] == "999"


def test_a_base_url_target_keeps_the_message_s_path_and_query(
    any_fake: QStashTasksFake, client: QStash, local_server: Any
) -> None:
    port = local_server.server_address[1]
    any_fake.destination("https://bare.example.com*").deliver_to(f"http://localhost:{port}/")
    any_fake.destination("https://app.example.com/*").deliver_to(f"http://127.0.0.1:{port}/baseX/")
    any_fake.destination("https://v6.example.com/").deliver_to("http://[::1]:9/")  # loopback too
    for url in ("https://bare.example.com", "https://bare.example.com?x=1", HOOK + "?y=2"):
        client.message.publish(url=url, body="x")
    any_fake.clock.advance(1_000)
    assert sorted(path for path, _, _ in local_server.received) == [
        "/",
        "/?x=1",
        "/baseX/hook?y=2",
    ]


def test_a_connection_failure_is_a_failed_attempt(
    client: QStash, any_fake: QStashTasksFake
) -> None:
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    any_fake.destination(HOOK).deliver_to(f"http://127.0.0.1:{port}")
    message_id = client.message.publish(url=HOOK, body="x", retries=0).message_id
    any_fake.clock.advance(1_000)
    (task,) = any_fake.tasks(message_id)
    assert task.state == "failed"
    assert task.error.startswith("connection failed: ")
    assert isinstance(any_fake.deliveries[0].exception, ConnectionRefusedError)
    assert any_fake.problems() == []
    with pytest.raises(AssertionError) as raised:
        any_fake.assert_delivered(HOOK, status=200)
    listed = str(raised.value).splitlines()[-1]
    assert listed == f"  - POST {HOOK} (message {message_id}, retried 0) -> {task.error}"


def test_real_https_to_a_local_server(
    any_fake: QStashTasksFake,
    client: QStash,
    local_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    import trustme

    authority = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    local_server.socket = context.wrap_socket(local_server.socket, server_side=True)
    # The certificates a Python client trusts by default, as an app's CA bundle would.
    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    port = local_server.server_address[1]
    any_fake.destination(HOOK).deliver_to(f"https://localhost:{port}/tls/")
    direct = f"https://127.0.0.1:{port}"  # no path: sent as /
    any_fake.destination(direct).deliver_to("http")
    for url in (HOOK, direct):
        client.message.publish(url=url, body="sealed", retries=0)
    any_fake.clock.advance(1_000)
    assert sorted(path for path, _, _ in local_server.received) == ["/", "/tls/hook"]
    assert [body for _, _, body in local_server.received] == [b"sealed", b"sealed"]


def test_a_real_http_receiver_that_never_answers_times_out(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, and never answers
        port = silent.getsockname()[1]
        any_fake.destination(HOOK).deliver_to(f"http://127.0.0.1:{port}")
        message_id = client.message.publish(url=HOOK, body="x", retries=0, timeout="1s").message_id
        started = time.perf_counter()
        any_fake.clock.advance(1_000)
        waited = time.perf_counter() - started
    (task,) = any_fake.tasks(message_id)
    assert (task.state, task.error) == ("failed", "request timed out: no answer within 1 s")
    assert 0.9 <= waited < 5


# -- assertions ------------------------------------------------------------------------


def test_assert_delivered_lists_the_attempts(any_fake: QStashTasksFake, client: QStash) -> None:
    with pytest.raises(AssertionError) as raised:
        any_fake.assert_delivered(HOOK)
    assert str(raised.value) == (
        f"expected a delivery attempt with url={HOOK!r} at least once, got 0 times; no attempt "
        "reached a receiver (deliver_to), or the clock has not reached them"
    )
    any_fake.destination(HOOK).deliver_to(lambda d: 200)
    message_id = client.message.publish(url=HOOK, body="x").message_id
    any_fake.clock.advance(1_000)
    with pytest.raises(AssertionError) as raised:
        any_fake.assert_delivered(HOOK, status=500)
    assert str(raised.value) == (
        f"expected a delivery attempt with url={HOOK!r}, status=500 at least once, got 0 times; "
        f"1 attempt(s) reached a receiver:\n  - POST {HOOK} (message {message_id}, retried 0) -> 200"
    )
    assert json.loads(json.dumps(any_fake.deliveries[0].headers))  # plain data


def test_assert_delivered_filters_by_message_status_and_count(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    statuses = iter([500, 200, 200])
    any_fake.destination(HOOK).deliver_to(lambda delivery: next(statuses))
    first = client.message.publish(url=HOOK, body="a").message_id
    any_fake.clock.advance(1_000)
    second = client.message.publish(url=HOOK, body="b").message_id
    any_fake.clock.advance(60_000)
    assert [a.message_id for a in any_fake.assert_delivered(message_id=first)] == [first, first]
    (only,) = any_fake.assert_delivered(message_id=second, status=200, times=1)
    assert only.message_id == second
    assert any_fake.assert_delivered(HOOK, message_id="msg_other", times=0) == []
    with pytest.raises(AssertionError) as raised:
        any_fake.assert_delivered(message_id=first, status=200, times=2)
    assert str(raised.value).splitlines()[0] == (
        f"expected a delivery attempt with message_id={first!r}, status=200 2 times, got once; "
        "3 attempt(s) reached a receiver:"
    )


def test_a_django_app_receives_in_process(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_django_receiver="""
        import django
        from django.conf import settings

        settings.configure(
            ROOT_URLCONF=__name__, ALLOWED_HOSTS=["app.example.com"], SECRET_KEY="x" * 50
        )
        django.setup()

        from django.core.wsgi import get_wsgi_application
        from django.http import HttpResponse
        from django.urls import path
        from django.views.decorators.csrf import csrf_exempt
        from qstash import QStash, Receiver

        HOOK = "https://app.example.com/hook"
        received = []


        @csrf_exempt
        def hook(request):
            receiver = Receiver(*KEYS)
            receiver.verify(
                signature=request.headers["Upstash-Signature"], body=request.body.decode(), url=HOOK
            )
            received.append((request.headers["Upstash-Retried"], request.body))
            return HttpResponse(status=500 if len(received) == 1 else 200)


        urlpatterns = [path("hook", hook)]
        KEYS = []


        def test_django(qstash_tasks):
            KEYS[:] = [qstash_tasks.current_signing_key, qstash_tasks.next_signing_key]
            qstash_tasks.destination(HOOK).deliver_to(get_wsgi_application())
            client = QStash(qstash_tasks.token, base_url=qstash_tasks.base_url)
            message_id = client.message.publish(url=HOOK, body="order 7").message_id
            qstash_tasks.clock.advance(61_000)
            assert received == [("0", b"order 7"), ("1", b"order 7")]
            assert qstash_tasks.tasks(message_id)[0].state == "delivered"
        """
    )
    pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=1)


def test_an_asgi_app_is_delivered_to_from_the_clocks_thread_under_the_wall_clock(sdk: Sdk) -> None:
    import gc

    import requests

    from pytest_qstash_tasks import QStashTasksServer

    seen: list[dict[str, Any]] = []
    with QStashTasksServer(clock="wall") as fake:
        fake.destination(HOOK).deliver_to(fastapi_app(fake, seen))
        client = sdk(fake.token, base_url=fake.base_url)
        message_id = client.message.publish(url=HOOK, body="x", retries=0).message_id
        time.sleep(0.3)  # real time: the attempt is made in the wall clock's thread
        url = f"{fake.base_url}/v1/messages/{message_id}/tasks"
        answer = requests.get(url, headers={"Authorization": f"Bearer {fake.token}"}, timeout=5)
        assert answer.json()["tasks"][0]["state"] in ("active", "failed")
        assert [s["retried"] for s in seen] == ["0"]
    gc.collect()  # no event loop left unclosed in the server's thread (it would warn here)


# -- what publishing and deliveries promise (each behaviour a mutant once changed unseen) --


def test_a_delivery_is_signed_with_the_current_key_alone(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    # The SDK's Receiver falls back to the next key: a verifier that knows only the
    # current key is what tells the two apart.
    received: list[DeliveryRequest] = []
    any_fake.destination(HOOK).deliver_to(lambda delivery: received.append(delivery) or 200)
    client.message.publish(url=HOOK, body="signed")
    any_fake.clock.advance(1_000)
    (delivery,) = received
    signature = delivery.header("Upstash-Signature")
    assert signature is not None
    verify_with_key(any_fake.current_signing_key, signature=signature, body="signed", url=HOOK)
    with pytest.raises(SignatureError):
        verify_with_key(any_fake.next_signing_key, signature=signature, body="signed", url=HOOK)


def test_a_cancelled_message_s_due_attempts_never_run(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    received: list[DeliveryRequest] = []
    any_fake.destination(HOOK).answers(500).deliver_to(
        lambda delivery: received.append(delivery) or 200
    )
    scripted = client.message.publish(url=HOOK, body="first", delay="1m").message_id
    to_app = client.message.publish(url=HOOK, body="second", delay="1m").message_id
    client.message.cancel(scripted)
    client.message.cancel(to_app)
    any_fake.clock.advance(10 * 60_000)
    assert received == []  # the receiver never called
    assert any_fake.destination(HOOK).remaining == [500]  # the scripted answer not used
    any_fake.assert_all_destination_answers_used = False
    assert [any_fake.tasks(m)[0].state for m in (scripted, to_app)] == ["canceled"] * 2


def test_a_header_value_s_bytes_reach_a_real_receiver_as_they_were_sent(
    any_fake: QStashTasksFake, local_server: Any
) -> None:
    # UTF-8 bytes in a forwarded header: every transport keeps them as they came, one
    # character a byte (as WSGI does), so a real receiver gets the very bytes sent.
    sent = "José".encode()
    port = local_server.server_address[1]
    any_fake.destination(HOOK).deliver_to(f"http://127.0.0.1:{port}")
    with client_for(any_fake) as http:
        http.post(f"/v2/publish/{HOOK}", content=b"x", headers={"Upstash-Forward-Name": sent})
    assert any_fake.published[0].header("Upstash-Forward-Name") == sent.decode("latin-1")
    any_fake.clock.advance(60_000)
    raw = [headers for _, headers, _ in local_server.received]
    assert raw[0]["Name"].encode("latin-1") == sent  # http.server reads Latin-1 too
