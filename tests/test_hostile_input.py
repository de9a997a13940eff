"""Malformed and hostile requests to the message API, found by fuzzing and by hand: each
gets a 4xx that names what is wrong, nothing is stored, and the fake serves on. Every
test runs through each transport."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from qstash import QStash

from pytest_qstash_tasks import QStashTasksFake
from tests.helpers import client_for, unserved

HOOK = "https://app.example.com/hook"
WANT_URL = "want an http:// or https:// URL with a host"


def batch(**entry: Any) -> tuple[str, dict[str, bytes], bytes]:
    """A one-entry batch request to ``HOOK`` (or the entry's destination)."""
    return "/v2/batch", {}, json.dumps([{"destination": HOOK, **entry}]).encode()


def publish(
    headers: dict[str, bytes], destination: str = HOOK
) -> tuple[str, dict[str, bytes], bytes]:
    return f"/v2/publish/{destination}", headers, b"x"


# (path, headers, body) -> the error's text, whole; a batch's names its entry.
BAD = {
    "retries of a superscript two": (
        publish({"Upstash-Retries": b"\xb2"}),
        "invalid Upstash-Retries '\u00b2': want an integer 0-100",
    ),
    "retries of a superscript one": (
        publish({"Upstash-Retries": b"\xb9"}),
        "invalid Upstash-Retries '\u00b9': want an integer 0-100",
    ),
    "a not-before of a superscript two": (
        publish({"Upstash-Not-Before": b"\xb2"}),
        "invalid Upstash-Not-Before '\u00b2': want unix seconds",
    ),
    "a timeout of a superscript one": (
        publish({"Upstash-Timeout": b"\xb9"}),
        "invalid Upstash-Timeout '\u00b9': want a number and a unit, e.g. 10s, 5m, 2h, 1d",
    ),
    "a delay in Arabic-Indic digits": (
        batch(headers={"Upstash-Delay": "\u0663s"}),
        "batch entry 0: invalid Upstash-Delay '\u0663s': want a number and a unit, e.g. 10s, "
        "5m, 2h, 1d (no entry of the batch was published)",
    ),
    "a destination with a broken IPv6 host": (
        publish({}, "http://[x/hook"),
        f"invalid destination 'http://[x/hook': {WANT_URL}: Invalid IPv6 URL",
    ),
    "a destination on port 99999": (
        publish({}, "http://app.example.com:99999/hook"),
        f"invalid destination 'http://app.example.com:99999/hook': {WANT_URL}: "
        "Port out of range 0-65535",
    ),
    "a destination on port abc": (
        publish({}, "http://app.example.com:abc/hook"),
        f"invalid destination 'http://app.example.com:abc/hook': {WANT_URL}: "
        "Port could not be cast to integer value as 'abc'",
    ),
    "a batch destination whose host NFKC changes": (
        batch(destination="http://a\u2100b.example.com/"),
        "batch entry 0: invalid destination 'http://a\u2100b.example.com/': "
        f"{WANT_URL}: netloc 'a\u2100b.example.com' contains invalid characters under NFKC "
        "normalization (no entry of the batch was published)",
    ),
    "a batch destination with a blank": (
        batch(destination="http://app.example.com/a b"),
        "batch entry 0: invalid destination 'http://app.example.com/a b': "
        f"{WANT_URL}, and no blank or control character (no entry of the batch was "
        "published)",
    ),
    "CR LF in a forwarded header's value": (
        batch(headers={"Upstash-Forward-X": "a\r\nInjected: 1"}),
        "batch entry 0: invalid value of header 'upstash-forward-x': CR, LF or NUL in "
        "'a\\r\\nInjected: 1' (no entry of the batch was published)",
    ),
    "a blank in a forwarded header's name": (
        batch(headers={"Upstash-Forward-X Y": "1"}),
        "batch entry 0: invalid header name 'upstash-forward-x y': want an HTTP token "
        "(no entry of the batch was published)",
    ),
    "LF in a header's name": (
        batch(headers={"Upstash-Forward-X\nY": "1"}),
        "batch entry 0: invalid header name 'upstash-forward-x\\ny': want an HTTP token "
        "(no entry of the batch was published)",
    ),
    "a bad delay beside a not-before": (
        publish({"Upstash-Not-Before": b"1893456000", "Upstash-Delay": b"soon"}),
        "invalid Upstash-Delay 'soon': want a number and a unit, e.g. 10s, 5m, 2h, 1d",
    ),
    "a HEAD delivery": (
        publish({"Upstash-Method": b"HEAD"}),
        "invalid Upstash-Method 'HEAD': want one of DELETE, GET, PATCH, POST, PUT",
    ),
    "an OPTIONS delivery": (
        publish({"Upstash-Method": b"options"}),
        "invalid Upstash-Method 'options': want one of DELETE, GET, PATCH, POST, PUT",
    ),
    "content-based deduplication of maybe": (
        publish({"Upstash-Content-Based-Deduplication": b"maybe"}),
        "invalid Upstash-Content-Based-Deduplication 'maybe': want true or false",
    ),
    "a callback that is not a URL": (
        publish({"Upstash-Callback": b"not a url"}),
        f"invalid Upstash-Callback 'not a url': {WANT_URL}, and no blank or control character",
    ),
    "a failure callback over ftp": (
        publish({"Upstash-Failure-Callback": b"ftp://files.example.com/"}),
        f"invalid Upstash-Failure-Callback 'ftp://files.example.com/': {WANT_URL}",
    ),
    "a batch of 100,000 nested arrays": (
        ("/v2/batch", {}, b"[" * 100_000 + b"]" * 100_000),
        "the body is not valid JSON: nested too deeply",
    ),
    "a URL group endpoint with a broken IPv6 host": (
        ("/v2/topics/g/endpoints", {}, b'{"endpoints": [{"url": "http://[x"}]}'),
        f"invalid endpoint url 'http://[x': {WANT_URL}: Invalid IPv6 URL",
    ),
}


@pytest.fixture
def http(any_fake: QStashTasksFake) -> Iterator[httpx.Client]:
    with client_for(any_fake) as client:
        yield client


@pytest.mark.parametrize(("request_", "error"), BAD.values(), ids=BAD.keys())
def test_bad_input_is_a_400_naming_it_with_nothing_stored(
    any_fake: QStashTasksFake,
    http: httpx.Client,
    request_: tuple[str, dict[str, bytes], bytes],
    error: str,
) -> None:
    path, headers, body = request_
    answer = http.post(path, headers=headers, content=body)
    assert (answer.status_code, answer.json()) == (400, {"error": error})
    assert (any_fake.published, any_fake.message_ids()) == ([], [])
    assert http.get("/v2/topics").json() == []
    assert http.post(f"/v2/publish/{HOOK}", content=b"ok").status_code == 200  # serving on
    any_fake.expect_unserved("bad_request")


def test_a_lowercase_method_and_true_in_capitals_are_taken(
    any_fake: QStashTasksFake, http: httpx.Client
) -> None:
    seen: list[str] = []
    any_fake.destination(HOOK).deliver_to(lambda delivery: seen.append(delivery.method) or 200)
    headers = {"Upstash-Method": "get", "Upstash-Content-Based-Deduplication": "TRUE"}
    first = http.post(f"/v2/publish/{HOOK}", headers=headers, content=b"x")
    again = http.post(f"/v2/publish/{HOOK}", headers=headers, content=b"x")
    assert (first.status_code, again.status_code) == (200, 202)
    assert again.json() == {**first.json(), "deduplicated": True}
    any_fake.clock.advance(1_000)
    assert seen == ["GET"]


def test_a_callback_url_is_taken_and_recorded(
    any_fake: QStashTasksFake, sdk: Callable[..., QStash]
) -> None:
    client = sdk(any_fake.token, base_url=any_fake.base_url)
    message_id = client.message.publish(
        url=HOOK,
        body="x",
        callback="https://app.example.com/done",
        failure_callback="http://127.0.0.1:8000/failed",
        delay="1h",
    ).message_id
    message = client.message.get(message_id)
    assert (message.callback, message.failure_callback) == (
        "https://app.example.com/done",
        "http://127.0.0.1:8000/failed",
    )


def test_a_path_the_fake_does_not_serve_is_named_to_the_sdk_with_the_way_out(
    any_fake: QStashTasksFake, sdk: Callable[..., QStash]
) -> None:
    from qstash.errors import QStashError

    client = sdk(any_fake.token, base_url=any_fake.base_url)
    with pytest.raises(QStashError) as raised:
        client.http.request(path="/v2/nowhere", method="GET")  # the SDK serves every path now
    body = json.dumps({"error": unserved("GET", "/v2/nowhere")})
    assert str(raised.value) == f"Request failed with status: 404, body: {body}"
    any_fake.expect_unserved("unknown_path")
