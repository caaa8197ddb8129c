"""The durable JetStream pull consumer the worker reads through."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy
from nats.js.errors import NotFoundError

from .bridge_settings import BridgeSettings
from .subjects import score_subject, score_subject_filter


class ConsumerSetupError(Exception):
    """The consumer could not be created, or exists with settings this worker cannot use."""


def consumer_config(settings: BridgeSettings) -> ConsumerConfig:
    """Explicit acks, every stored event on first creation, and `max_deliver` unlimited on
    purpose: the worker counts deliveries and dead-letters at GRADECAST_MAX_DELIVER itself; a
    server-side limit would stop redelivering silently instead."""
    filters = [score_subject(settings.subject_prefix, q) for q in settings.queues]
    return ConsumerConfig(
        durable_name=settings.durable_name,
        description="gradecast_openedx: EXTERNAL_GRADER_SCORE_SUBMITTED for the LMS",
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        # One queue, or all of them, is one filter; several queues need NATS 2.10's list.
        filter_subject=(
            score_subject_filter(settings.subject_prefix)
            if not filters
            else filters[0]
            if len(filters) == 1
            else None
        ),
        filter_subjects=filters if len(filters) > 1 else None,
        ack_wait=settings.ack_wait_s,
        max_deliver=-1,
        max_ack_pending=settings.max_ack_pending,
    )


def _filters_of(config: ConsumerConfig) -> list[str]:
    if config.filter_subjects:
        return sorted(config.filter_subjects)
    return [config.filter_subject] if config.filter_subject else []


async def ensure_score_consumer(js: JetStreamContext, settings: BridgeSettings) -> ConsumerInfo:
    """Creates the durable consumer, or brings an existing one to these settings (ack wait,
    max ack pending). One that filters other subjects, does not ack explicitly or is a push
    consumer is refused, not changed under whoever else uses it."""
    wanted = consumer_config(settings)
    try:
        existing = await js.consumer_info(settings.stream, settings.durable_name)
    except NotFoundError:
        existing = None
    if existing is None:
        return await _create_score_consumer(js, settings, wanted)
    have = existing.config
    if _filters_of(have) != _filters_of(wanted):
        raise ConsumerSetupError(
            f"consumer {settings.durable_name} filters {_filters_of(have)}, this worker wants "
            f"{_filters_of(wanted)}: use another GRADECAST_DURABLE_NAME or delete the consumer"
        )
    if have.ack_policy != AckPolicy.EXPLICIT or have.deliver_subject:
        raise ConsumerSetupError(
            f"consumer {settings.durable_name} is not an explicit-ack pull consumer"
        )
    is_same = (
        have.ack_wait == wanted.ack_wait
        and have.max_deliver == wanted.max_deliver
        and have.max_ack_pending == wanted.max_ack_pending
    )
    if is_same:
        return existing
    # Creating a durable again with changed updatable settings updates it (NATS 2.9+); the
    # filter is the same and the deliver policy only counts for a new consumer.
    return await js.add_consumer(settings.stream, wanted)


async def _create_score_consumer(
    js: JetStreamContext, settings: BridgeSettings, wanted: ConsumerConfig
) -> ConsumerInfo:
    try:
        created = await js.add_consumer(settings.stream, wanted)
    except NotFoundError as error:
        raise ConsumerSetupError(
            f"stream {settings.stream} does not exist (gradecast creates it when it starts)"
        ) from error
    if _filters_of(created.config) != _filters_of(wanted):
        # A server before 2.10 ignores `filter_subjects`: the consumer would take every queue.
        await js.delete_consumer(settings.stream, settings.durable_name)
        raise ConsumerSetupError(
            f"the server made consumer {settings.durable_name} filter "
            f"{_filters_of(created.config)}, not {_filters_of(wanted)}: several "
            "GRADECAST_QUEUES need NATS 2.10 or later (or run one worker per queue)"
        )
    return created
