"""``qstash_tasks.url_groups``: the URL groups the fake holds, the same ones the HTTP API
serves, read and changed as the SDK's ``client.url_group`` does, and asserted on. Every
test runs through each transport."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from qstash import QStash

from pytest_qstash_tasks import QStashTasksFake, UrlGroup, UrlGroupEndpoint

A, B = "https://a.example.com/in", "https://b.example.com/in"


@pytest.fixture
def client(any_fake: QStashTasksFake, sdk: Callable[..., QStash]) -> QStash:
    return sdk(any_fake.token, base_url=any_fake.base_url)


def test_a_group_the_app_made_is_read_on_the_fake(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    client.url_group.upsert_endpoints(url_group="orders", endpoints=[{"url": A}])
    any_fake.clock.advance(5)
    client.url_group.upsert_endpoints(url_group="orders", endpoints=[{"url": B, "name": "b"}])
    start = any_fake.clock.start
    assert any_fake.url_groups.get("orders") == UrlGroup(
        "orders", (UrlGroupEndpoint(A), UrlGroupEndpoint(B, "b")), start, start + 5
    )
    assert [group.name for group in any_fake.url_groups.list()] == ["orders"]
    assert any_fake.url_groups.assert_endpoints("orders", [B, A]).urls == [A, B]
    assert repr(any_fake.url_groups) == "<UrlGroups 'orders'>"


def test_a_group_made_on_the_fake_is_what_the_app_publishes_to(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    made = any_fake.url_groups.upsert_endpoints("orders", [A, {"url": B, "name": "b"}])
    assert made.urls == [A, B]
    assert [(e.url, e.name) for e in client.url_group.get("orders").endpoints] == [
        (A, None),
        (B, "b"),
    ]
    answers: Any = client.message.publish_json(url_group="orders", body={"n": 1})
    assert [answer.url for answer in answers] == [A, B]
    any_fake.url_groups.upsert_endpoints("orders", [{"url": A + "2", "name": "b"}])  # by name
    assert any_fake.url_groups.get("orders").urls == [A, A + "2"]
    any_fake.url_groups.remove_endpoints("orders", [{"name": "b"}])
    assert any_fake.url_groups.get("orders").urls == [A]
    any_fake.url_groups.remove_endpoints("orders", [A])  # the last one: the group goes
    assert any_fake.url_groups.list() == [] == client.url_group.list()
    any_fake.url_groups.upsert_endpoints("gone", [A])
    any_fake.url_groups.delete("gone")
    assert client.url_group.list() == []


def test_what_a_group_holds_is_a_copy(any_fake: QStashTasksFake) -> None:
    before = any_fake.url_groups.upsert_endpoints("orders", [A])
    any_fake.url_groups.upsert_endpoints("orders", [B])
    assert before.urls == [A]
    with pytest.raises(AttributeError):
        before.name = "other"  # type: ignore[misc]


def test_reset_forgets_the_groups(any_fake: QStashTasksFake) -> None:
    any_fake.url_groups.upsert_endpoints("orders", [A])
    any_fake.reset()
    assert any_fake.url_groups.list() == []


def test_assert_endpoints_lists_the_groups_when_it_fails(any_fake: QStashTasksFake) -> None:
    with pytest.raises(AssertionError) as raised:
        any_fake.url_groups.assert_endpoints("orders", [A])
    assert str(raised.value) == (
        f"expected URL group 'orders' with endpoints [{A!r}]; the fake holds no URL group"
    )
    any_fake.url_groups.upsert_endpoints("orders", [A, B])
    any_fake.url_groups.upsert_endpoints("billing", [B])
    with pytest.raises(AssertionError) as raised:
        any_fake.url_groups.assert_endpoints("orders", [A])
    assert str(raised.value) == (
        f"expected URL group 'orders' with endpoints [{A!r}]; the fake holds 2 URL group(s):\n"
        f"  - orders: {A}, {B}\n"
        f"  - billing: {B}"
    )


@pytest.mark.parametrize(
    ("call", "error", "text"),
    [
        (lambda g: g.get("nope"), KeyError, "no URL group 'nope' (URL groups: 'orders')"),
        (lambda g: g.delete("nope"), KeyError, "no URL group 'nope' (URL groups: 'orders')"),
        (
            lambda g: g.remove_endpoints("nope", [A]),
            KeyError,
            "no URL group 'nope' (URL groups: 'orders')",
        ),
        (
            lambda g: g.upsert_endpoints("a b", [A]),
            ValueError,
            "a URL group's name is 1-256 letters, digits, '.', '_' or '-', got 'a b'",
        ),
        (
            lambda g: g.upsert_endpoints("x", A),
            ValueError,
            f"endpoints is a non-empty list of URLs or {{'url': ..., 'name': ...}}, got {A!r}",
        ),
        (
            lambda g: g.upsert_endpoints("x", []),
            ValueError,
            "endpoints is a non-empty list of URLs or {'url': ..., 'name': ...}, got []",
        ),
        (
            lambda g: g.upsert_endpoints("x", ["ftp://a"]),
            ValueError,
            "invalid endpoint url 'ftp://a': want an http:// or https:// URL with a host",
        ),
        (
            lambda g: g.upsert_endpoints("x", [{"name": "n"}]),
            ValueError,
            "an endpoint needs a url: {'name': 'n'}",
        ),
        (
            lambda g: g.upsert_endpoints("x", [{"url": A, "weight": "2"}]),
            ValueError,
            f"an endpoint is a URL or {{'url': ..., 'name': ...}}, got {{'url': {A!r}, "
            "'weight': '2'}",
        ),
        (
            lambda g: g.remove_endpoints("orders", [{}]),
            ValueError,
            "an endpoint needs a url or a name: {}",
        ),
        (
            lambda g: g.upsert_endpoints("x", [{"url": A, "name": 5}]),
            ValueError,
            "an endpoint's name is a str, got 5",
        ),
    ],
)
def test_bad_input_is_refused_in_words_and_changes_nothing(
    any_fake: QStashTasksFake, call: Callable[[Any], object], error: type[Exception], text: str
) -> None:
    any_fake.url_groups.upsert_endpoints("orders", [A])
    with pytest.raises(error) as raised:
        call(any_fake.url_groups)
    assert raised.value.args[0] == text
    assert [(g.name, g.urls) for g in any_fake.url_groups.list()] == [("orders", [A])]


def test_repr_and_missing_groups_name_every_group(any_fake: QStashTasksFake) -> None:
    assert repr(any_fake.url_groups) == "<UrlGroups none>"
    with pytest.raises(KeyError) as raised:
        any_fake.url_groups.get("orders")
    assert raised.value.args[0] == "no URL group 'orders' (URL groups: none)"
    any_fake.url_groups.upsert_endpoints("a", [A])
    any_fake.url_groups.upsert_endpoints("b", [B])
    assert repr(any_fake.url_groups) == "<UrlGroups 'a', 'b'>"
    with pytest.raises(KeyError) as raised:
        any_fake.url_groups.get("orders")
    assert raised.value.args[0] == "no URL group 'orders' (URL groups: 'a', 'b')"
    with pytest.raises(ValueError, match=r"^invalid endpoint url 5: want a str$"):
        any_fake.url_groups.upsert_endpoints("a", [{"url": 5}])  # type: ignore[list-item]
