"""The LMS worker: pulls gradecast events from JetStream and applies each one through the
upstream signal, with the TypeScript subscriber SDK's delivery rules.

- Acknowledged only after every receiver returned and the AppliedScore row committed.
- A receiver error naks the event with a growing delay (GRADECAST_BACKOFF_S); on delivery
  GRADECAST_MAX_DELIVER it goes to `<prefix>.dlq.v1.<queue token>` and is terminated, only
  once JetStream stored the dead letter. Poison messages go there at once.
- One event at a time, in stream order, so the events of a submission are applied in order;
  an event redelivered after a newer one of its submission was applied is acknowledged
  without being applied (see score_applier).
- Held events get `in_progress()` while a slow receiver runs, so none is redelivered under it.
- `stop()` finishes the event in hand, gives the fetched but unstarted ones back at once
  (nak), flushes the acks and closes the connection.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import nats
import nats.errors
from django.db import connections
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from openedx_events.tooling import prepare_for_new_work_cycle

from .bridge_settings import BridgeSettings
from .dead_letters import publish_dead_letter
from .score_applier import ApplyResult, Outcome, apply_score_event
from .score_consumer import ensure_score_consumer
from .score_events import PoisonMessageError, ScoreEvent, read_score_event
from .worker_health import WorkerHealth

log = logging.getLogger(__name__)

#: Longest a pull request waits for events; also how often an idle worker rewrites its health.
FETCH_TIMEOUT_S = 5.0
#: Waits before trying again after a failed pull or consumer setup (the last repeats).
RESTART_DELAYS_S = (0.25, 1.0, 5.0, 15.0)


class ScoreWorker:
    """Runs until `stop()`; construct it, then `await run()` in an event loop."""

    def __init__(
        self,
        settings: BridgeSettings,
        *,
        apply: Callable[[ScoreEvent], ApplyResult] = apply_score_event,
    ) -> None:
        self.settings = settings
        self.health = WorkerHealth(
            settings.health_file, consumer=settings.durable_name, stream=settings.stream
        )
        self._apply = apply
        self._stopping: asyncio.Event | None = None
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        # Django work happens on one thread of its own: the ORM is synchronous, and one
        # thread keeps one database connection.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gradecast-apply")

    def stop(self) -> None:
        """Asks the worker to stop (from the event loop's thread, e.g. a signal handler)."""
        if self._stopping is not None and not self._stopping.is_set():
            log.info("gradecast worker stopping: finishing the event in hand")
            self._stopping.set()

    @property
    def is_stopping(self) -> bool:
        return self._stopping is not None and self._stopping.is_set()

    async def run(self) -> None:
        """Connects, ensures the consumer, and applies events until stopped."""
        self._stopping = asyncio.Event()
        settings = self.settings
        self.health.set_state("starting")
        self._nc = await connect_nats(settings, is_closing=lambda: self.is_stopping)
        try:
            self._js = self._nc.jetstream()
            info = await ensure_score_consumer(self._js, settings)
            log.info(
                "gradecast worker consuming %s through %s (filter %s, %d pending)",
                settings.stream,
                settings.durable_name,
                info.config.filter_subjects or info.config.filter_subject,
                info.num_pending,
            )
            pull = await self._js.pull_subscribe_bind(
                durable=settings.durable_name, stream=settings.stream
            )
            self.health.set_state("running")
            await self._consume(pull)
            await pull.unsubscribe()
        finally:
            self.health.set_state("stopping")
            try:
                # Drain flushes the acks: without it the last ones could be lost with the socket.
                await self._nc.drain()
            finally:
                await asyncio.get_running_loop().run_in_executor(
                    self._executor, connections.close_all
                )
                self._executor.shutdown(wait=True)
                self.health.set_state("stopped")
                log.info("gradecast worker stopped: %s", dict(self.health.counts))

    async def _consume(self, pull: JetStreamContext.PullSubscription) -> None:
        failures = 0
        while not self.is_stopping:
            try:
                messages = await self._fetch(pull)
            except Exception as error:  # the connection, the consumer or JetStream is unwell
                failures += 1
                self.health.set_state("reconnecting", _describe(error))
                log.warning("gradecast pull failed (%s): trying again", _describe(error))
                await self._pause(RESTART_DELAYS_S[min(failures, len(RESTART_DELAYS_S)) - 1])
                await self._ensure_consumer_again()
                continue
            if failures:
                failures = 0
                self.health.set_state("running")
            for index, msg in enumerate(messages):
                if self.is_stopping:
                    # Never started: back to the stream now rather than after the ack wait.
                    for unstarted in messages[index:]:
                        await unstarted.nak()
                    break
                await self._process(msg, waiting=messages[index + 1 :])
            self.health.write()

    async def _fetch(self, pull: JetStreamContext.PullSubscription) -> list[Msg]:
        """The next batch, or [] when none came within FETCH_TIMEOUT_S or the worker stops."""
        assert self._stopping is not None
        fetch = asyncio.ensure_future(pull.fetch(self.settings.batch_size, timeout=FETCH_TIMEOUT_S))
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not fetch.done():
            # Events the server sends this pull from now on are redelivered after the ack wait.
            fetch.cancel()
            return []
        try:
            return fetch.result()
        except (TimeoutError, nats.errors.TimeoutError):
            return []

    async def _ensure_consumer_again(self) -> None:
        assert self._js is not None
        try:
            await ensure_score_consumer(self._js, self.settings)
        except Exception as error:
            log.warning("gradecast consumer setup failed: %s", _describe(error))

    async def _process(self, msg: Msg, waiting: list[Msg]) -> None:
        metadata = msg.metadata
        try:
            event = read_score_event(
                msg.subject,
                msg.data,
                msg.headers,
                metadata.sequence.stream,
                metadata.num_delivered,
            )
        except PoisonMessageError as poison:
            await self._dead_letter(msg, poison.reason, str(poison))
            return
        try:
            result = await self._apply_holding(event, held=[msg, *waiting])
        except Exception as error:
            await self._after_failure(msg, event, error)
            return
        await msg.ack()
        if result.outcome is Outcome.APPLIED:
            self.health.count("applied")
            log.info("gradecast applied %s", event.describe())
        else:
            self.health.count("already-applied")
            log.info(
                "gradecast skipped %s: the submission already stands at sequence %d",
                event.describe(),
                result.applied_sequence,
            )

    async def _apply_holding(self, event: ScoreEvent, held: list[Msg]) -> ApplyResult:
        """Applies `event` on the Django thread, telling JetStream every held event is still
        being worked on while the receivers run."""
        loop = asyncio.get_running_loop()
        applying = loop.run_in_executor(self._executor, self._apply_in_thread, event)
        while True:
            done, _ = await asyncio.wait({applying}, timeout=self.settings.working_interval_s)
            if done:
                return applying.result()
            for msg in held:
                await msg.in_progress()

    def _apply_in_thread(self, event: ScoreEvent) -> ApplyResult:
        # What Open edX's own event-bus consumer does per event: a usable database
        # connection and an empty request cache.
        prepare_for_new_work_cycle()
        return self._apply(event)

    async def _after_failure(self, msg: Msg, event: ScoreEvent, error: Exception) -> None:
        settings = self.settings
        if event.delivery_count >= settings.max_deliver:
            log.error(
                "gradecast receivers failed on %s, the last of %d deliveries: dead-lettering it",
                event.describe(),
                settings.max_deliver,
                exc_info=error,
            )
            await self._dead_letter(msg, "max-deliver", _describe(error))
            return
        delay_s = settings.backoff_after(event.delivery_count)
        self.health.count("failed")
        self.health.last_error = _describe(error)
        log.warning(
            "gradecast receivers failed on %s: redelivery in %.1f s",
            event.describe(),
            delay_s,
            exc_info=error,
        )
        await msg.nak(delay=delay_s)

    async def _dead_letter(self, msg: Msg, reason: str, error_message: str) -> None:
        """Terminates `msg` once its dead letter is stored; if that fails, naks it so it comes
        back and is tried again (the consumer never drops it: max_deliver is unlimited)."""
        assert self._js is not None
        settings = self.settings
        try:
            receipt = await publish_dead_letter(
                self._js,
                msg,
                reason=reason,
                error_message=error_message,
                consumer=settings.durable_name,
                subject_prefix=settings.subject_prefix,
                queue_name=settings.queues[0] if len(settings.queues) == 1 else None,
            )
        except Exception as publish_error:
            delay_s = settings.backoff_after(msg.metadata.num_delivered)
            log.error(
                "gradecast could not dead-letter stream sequence %d (%s): redelivery in %.1f s",
                msg.metadata.sequence.stream,
                _describe(publish_error),
                delay_s,
            )
            await msg.nak(delay=delay_s)
            return
        await msg.term()
        self.health.count("dead-lettered")
        self.health.last_error = error_message
        log.error(
            "gradecast dead-lettered stream sequence %d to %s (sequence %d, %s): %s",
            msg.metadata.sequence.stream,
            receipt.subject,
            receipt.sequence,
            reason,
            error_message,
        )

    async def _pause(self, seconds: float) -> None:
        """Waits `seconds`, or less if the worker is asked to stop meanwhile."""
        assert self._stopping is not None
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            pass


async def connect_nats(
    settings: BridgeSettings, is_closing: Callable[[], bool] = lambda: False
) -> NatsClient:
    """Connects with the configured credentials; reconnects forever once connected.
    `is_closing` tells a disconnection we asked for (the drain on stop) from a lost one."""

    async def on_error(error: Exception) -> None:
        log.warning("gradecast NATS connection: %s", _describe(error))

    async def on_disconnected() -> None:
        if not is_closing():
            log.warning("gradecast NATS connection lost: reconnecting")

    async def on_reconnected() -> None:
        log.info("gradecast NATS connection back")

    options: dict = {
        "servers": list(settings.nats_urls),
        "name": f"gradecast_openedx {settings.durable_name}",
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 2,
        "connect_timeout": 5,
        "error_cb": on_error,
        "disconnected_cb": on_disconnected,
        "reconnected_cb": on_reconnected,
    }
    if settings.nats_credentials_file is not None:
        options["user_credentials"] = settings.nats_credentials_file
    if settings.nats_token is not None:
        options["token"] = settings.nats_token
    if settings.nats_user is not None:
        options["user"] = settings.nats_user
        options["password"] = settings.nats_password
    if settings.nats_tls_ca_file is not None:
        options["tls"] = ssl.create_default_context(cafile=settings.nats_tls_ca_file)
    return await nats.connect(**options)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
