"""The durable consumer against a real nats-server (Debian's 2.9 here)."""

import asyncio

import nats
import pytest
from nats.js.errors import NotFoundError

from gradecast_openedx.bridge_settings import BridgeSettings
from gradecast_openedx.score_consumer import ConsumerSetupError, ensure_score_consumer

STREAM = "CONSUMER_TESTS"


def run(nats_url, work):
    async def main():
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            try:
                await js.stream_info(STREAM)
            except NotFoundError:
                await js.add_stream(name=STREAM, subjects=["consumer-tests.scores.v1.*"])
            return await work(js)
        finally:
            await nc.close()

    return asyncio.run(main())


def settings(**values):
    return BridgeSettings(stream=STREAM, subject_prefix="consumer-tests", **values)


def test_a_durable_is_brought_to_new_ack_settings_and_keeps_its_filter(nats_server):
    async def work(js):
        first = await ensure_score_consumer(js, settings(durable_name="d1", queues=("q.1",)))
        again = await ensure_score_consumer(
            js, settings(durable_name="d1", queues=("q.1",), ack_wait_s=2, batch_size=3)
        )
        return first.config, again.config

    first, again = run(nats_server.url, work)
    assert (first.filter_subject, first.ack_wait, first.max_ack_pending) == (
        "consumer-tests.scores.v1.q%2E1",
        30,
        20,
    )
    assert (again.filter_subject, again.ack_wait, again.max_ack_pending, again.max_deliver) == (
        "consumer-tests.scores.v1.q%2E1",
        2,
        6,
        -1,
    )


def test_a_durable_that_filters_another_queue_is_refused_not_changed(nats_server):
    async def work(js):
        await ensure_score_consumer(js, settings(durable_name="d2", queues=("a",)))
        with pytest.raises(ConsumerSetupError, match="use another GRADECAST_DURABLE_NAME"):
            await ensure_score_consumer(js, settings(durable_name="d2", queues=("b",)))
        return (await js.consumer_info(STREAM, "d2")).config.filter_subject

    assert run(nats_server.url, work) == "consumer-tests.scores.v1.a"


def test_several_queues_on_a_server_that_ignores_filter_subjects_leave_no_consumer(nats_server):
    async def work(js):
        try:
            info = await ensure_score_consumer(js, settings(durable_name="d3", queues=("a", "b")))
        except ConsumerSetupError as refused:
            with pytest.raises(NotFoundError):
                await js.consumer_info(STREAM, "d3")
            return str(refused)
        return sorted(info.config.filter_subjects)  # NATS 2.10+ keeps both filters

    outcome = run(nats_server.url, work)
    assert (
        outcome in (["consumer-tests.scores.v1.a", "consumer-tests.scores.v1.b"],)
        or "need NATS 2.10" in outcome
    )
