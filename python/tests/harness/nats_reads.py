"""Looks into JetStream from the tests (synchronous wrappers over nats-py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import nats
from nats.js.errors import NotFoundError


@dataclass(frozen=True)
class StoredMessage:
    sequence: int
    subject: str
    data: bytes
    headers: dict[str, str]


def stream_messages(nats_url: str, stream: str) -> list[StoredMessage]:
    """Every message a stream holds now, oldest first."""

    async def read() -> list[StoredMessage]:
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            state = (await js.stream_info(stream)).state
            found = []
            if state.messages == 0:
                return found
            for seq in range(state.first_seq, state.last_seq + 1):
                try:
                    raw = await js.get_msg(stream, seq)
                except NotFoundError:
                    continue  # deleted (a re-driven dead letter)
                found.append(
                    StoredMessage(seq, raw.subject, raw.data or b"", dict(raw.headers or {}))
                )
            return found
        finally:
            await nc.close()

    return asyncio.run(read())


def consumer_counts(nats_url: str, stream: str, durable: str) -> tuple[int, int]:
    """(events not yet delivered, events delivered and not acknowledged) of a consumer."""

    async def read() -> tuple[int, int]:
        nc = await nats.connect(nats_url)
        try:
            info = await nc.jetstream().consumer_info(stream, durable)
            return info.num_pending, info.num_ack_pending
        finally:
            await nc.close()

    return asyncio.run(read())


def publish(nats_url: str, subject: str, data: bytes, headers: dict[str, str]) -> int:
    """Publishes to JetStream as a publisher other than gradecast would; returns the sequence."""

    async def send() -> int:
        nc = await nats.connect(nats_url)
        try:
            return (await nc.jetstream().publish(subject, data, headers=headers)).seq
        finally:
            await nc.close()

    return asyncio.run(send())
