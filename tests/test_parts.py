"""The fake's parts: one per SDK resource, reached as an attribute named after it
(``messages``, ``signing_keys``, ``url_groups``), and the flat names a test uses most,
which are the parts' own methods. Every test runs through each transport."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest
from qstash import QStash, Receiver

from pytest_qstash_tasks import Messages, QStashTasksFake, SigningKeys, UrlGroups

HOOK = "https://app.example.com/hook"


def test_each_part_is_reached_by_its_sdk_name(any_fake: QStashTasksFake) -> None:
    assert isinstance(any_fake.messages, Messages)
    assert isinstance(any_fake.signing_keys, SigningKeys)
    assert isinstance(any_fake.url_groups, UrlGroups)


def test_messages_reads_what_the_flat_names_read(
    any_fake: QStashTasksFake, sdk: Callable[..., QStash]
) -> None:
    client = sdk(any_fake.token, base_url=any_fake.base_url)
    script = any_fake.messages.destination(HOOK)
    assert any_fake.destination(HOOK) is script
    script.deliver_to(lambda delivery: 200)
    client.message.publish_json(url=HOOK, body={"n": 1})
    any_fake.clock.advance(1_000)
    assert any_fake.messages.published == any_fake.published
    assert any_fake.messages.deliveries == any_fake.deliveries
    assert any_fake.messages.assert_published(HOOK, json={"n": 1}, times=1)
    assert any_fake.messages.assert_delivered(HOOK, status=200, times=1)
    assert any_fake.messages.scripts() == [script]


def test_signing_keys_rotate_and_sign_as_the_flat_names_do(any_fake: QStashTasksFake) -> None:
    keys = any_fake.signing_keys
    first = (keys.current, keys.next)
    assert first == (any_fake.current_signing_key, any_fake.next_signing_key)
    signature = keys.sign("body", HOOK)
    Receiver(current_signing_key=first[0], next_signing_key=first[1]).verify(
        signature=signature, body="body", url=HOOK
    )
    keys.rotate()
    assert (any_fake.current_signing_key, keys.current) == (first[1], first[1])
    any_fake.rotate_signing_keys()
    assert keys.current not in first


@pytest.mark.parametrize(
    ("flat", "part"),
    [
        ("destination", "messages.destination"),
        ("assert_published", "messages.assert_published"),
        ("assert_delivered", "messages.assert_delivered"),
        ("sign", "signing_keys.sign"),
        ("rotate_signing_keys", "signing_keys.rotate"),
    ],
)
def test_a_flat_name_is_its_part_s_method(flat: str, part: str) -> None:
    import pytest_qstash_tasks as package

    owner, _, method = part.partition(".")
    cls = {"messages": package.Messages, "signing_keys": package.SigningKeys}[owner]
    mine = getattr(QStashTasksFake, flat)
    theirs = getattr(cls, method)
    assert mine.__doc__ == theirs.__doc__
    assert inspect.signature(mine) == inspect.signature(theirs)
