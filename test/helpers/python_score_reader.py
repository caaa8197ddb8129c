"""Receives one gradecast score event from JetStream the way the Python bridge does, and
prints its envelope as proto3 JSON (one line).

    .data/python-venv/bin/python test/helpers/python_score_reader.py \
        --nats nats://127.0.0.1:4222 --stream GRADECAST_SCORES \
        --subject 'gradecast.scores.v1.*' --event-id <uuid>

A durable-less pull consumer fetches events in stream order until the one with `--event-id`,
reads each with the bridge's own `read_score_event` (decode, header and contract checks) and
acknowledges it. Runs with the test venv (nats-py, the installed gradecast_openedx) and
gen/python on PYTHONPATH. Exits 1 when the event does not arrive within `--timeout-s`.
"""

import argparse
import asyncio
import sys
import time

import nats
import nats.errors
from google.protobuf import json_format
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from gradecast_openedx.score_events import read_score_event


async def read_event(args: argparse.Namespace) -> str | None:
    connection = await nats.connect(args.nats)
    try:
        js = connection.jetstream()
        subscription = await js.pull_subscribe(
            args.subject,
            stream=args.stream,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.EXPLICIT),
        )
        give_up_at = time.monotonic() + args.timeout_s
        while time.monotonic() < give_up_at:
            try:
                messages = await subscription.fetch(10, timeout=1)
            except nats.errors.TimeoutError:
                continue
            for message in messages:
                event = read_score_event(
                    message.subject,
                    message.data,
                    message.headers,
                    message.metadata.sequence.stream,
                    message.metadata.num_delivered,
                )
                await message.ack()
                if str(event.id) == args.event_id:
                    return json_format.MessageToJson(event.envelope, indent=None)
        return None
    finally:
        await connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nats", required=True)
    parser.add_argument("--stream", required=True)
    parser.add_argument("--subject", required=True)
    parser.add_argument("--event-id", required=True)
    parser.add_argument("--timeout-s", type=float, default=30)
    args = parser.parse_args()
    line = asyncio.run(read_event(args))
    if line is None:
        print(f"event {args.event_id} did not arrive in {args.timeout_s} s", file=sys.stderr)
        return 1
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
