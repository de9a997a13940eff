import pytest
from qstash import QStash
from qstash.errors import DailyMessageLimitExceededError, RateLimitExceededError


def test_the_sdk_raises_on_the_burst_limit(qstash_tasks):
    qstash_tasks.add("msg_1", count=3)
    qstash_tasks.rate_limit_next(limit=100, remaining=0)
    client = QStash(qstash_tasks.token, base_url=qstash_tasks.base_url, retry=False)
    with pytest.raises(RateLimitExceededError) as caught:
        client.http.request(path="/v1/messages/msg_1/tasks", method="GET")
    assert caught.value.limit == "100"
    assert caught.value.remaining == "0"
    # The reset is a unix timestamp (s) from the fake's clock: its next second.
    assert caught.value.reset == str(qstash_tasks.clock.now // 1000 + 1)


def test_the_daily_limit(qstash_tasks):
    qstash_tasks.add("msg_1", count=3)
    qstash_tasks.rate_limit_next(daily=True)
    client = QStash(qstash_tasks.token, base_url=qstash_tasks.base_url, retry=False)
    with pytest.raises(DailyMessageLimitExceededError):
        client.http.request(path="/v1/messages/msg_1/tasks", method="GET")
    # Used up: the next request is served normally.
    assert client.http.request(path="/v1/messages/msg_1/tasks", method="GET")["tasks"]
