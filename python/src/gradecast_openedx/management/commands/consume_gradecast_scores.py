"""`manage.py lms consume_gradecast_scores`: the worker that applies gradecast scores."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from django.conf import settings as django_settings
from django.core.management.base import BaseCommand, CommandError
from nats.errors import NoServersError

from gradecast_openedx.bridge_settings import load_bridge_settings
from gradecast_openedx.score_consumer import ConsumerSetupError
from gradecast_openedx.score_worker import ScoreWorker

log = logging.getLogger("gradecast_openedx.score_worker")


class Command(BaseCommand):
    help = (
        "Apply gradecast's EXTERNAL_GRADER_SCORE_SUBMITTED events: read them from JetStream "
        "through a durable consumer and send each as openedx-events' signal. Settings: "
        "GRADECAST_* (see gradecast_openedx.bridge_settings). SIGTERM or SIGINT stops it "
        "after the event in hand; a second one exits at once."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--durable-name", help="durable consumer name (default: GRADECAST_DURABLE_NAME)"
        )
        parser.add_argument(
            "--queue",
            action="append",
            dest="queues",
            help="a grader queue to take; repeat for several (default: GRADECAST_QUEUES)",
        )

    def handle(self, *args, **options):
        settings = load_bridge_settings(
            django_settings,
            durable_name=options["durable_name"],
            queues=tuple(options["queues"]) if options["queues"] else None,
        )
        try:
            asyncio.run(run_until_signalled(ScoreWorker(settings)))
        except ConsumerSetupError as error:
            raise CommandError(f"gradecast consumer: {error}") from error
        except (NoServersError, OSError) as error:
            raise CommandError(
                f"gradecast: cannot reach NATS at {', '.join(settings.nats_urls)}: {error}"
            ) from error


async def run_until_signalled(worker: ScoreWorker) -> None:
    """Runs `worker`; the first SIGTERM/SIGINT stops it gracefully, a second exits at once
    (the event in hand is then redelivered after the ack wait; its transaction never commits)."""
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if worker.is_stopping:
            log.warning("gradecast worker: second %s, exiting now", signal.Signals(signum).name)
            logging.shutdown()
            os._exit(1)
        worker.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await worker.run()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
