"""AppliedScore keys a submission by its queue and id: migration 0002 from a database written by
the bridge before it, and the one kind of old row an event can still match."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from conftest import score_data
from gradecast.v1 import event_pb2
from gradecast_openedx.models import AppliedScore
from gradecast_openedx.score_applier import Outcome, apply_score_event
from gradecast_openedx.score_events import ScoreEvent

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("gradecast_openedx", "0001_initial")]
AFTER = [("gradecast_openedx", "0002_applied_score_per_queue")]
APPLIED_AT = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def migrate_to(target):
    """Migrates the test database's gradecast_openedx tables to `target`; returns its models."""
    executor = MigrationExecutor(connection)
    executor.migrate(target)
    return MigrationExecutor(connection).loader.project_state(target).apps


def score_event(queue_name: str, submission_id: int, sequence: int, event_id: uuid.UUID):
    envelope = event_pb2.ExternalGraderScoreSubmitted(
        score_data=score_data(queue_name, submission_id=submission_id),
        submission_sequence=sequence,
    )
    return ScoreEvent(
        envelope=envelope,
        id=event_id,
        time=datetime.now(UTC),
        subject=f"gradecast.scores.v1.{queue_name}",
        stream_sequence=1,
        delivery_count=1,
    )


@pytest.fixture
def rows_written_before_0002():
    """Two rows as the bridge wrote them before 0002; the schema is the latest again after."""
    old_apps = migrate_to(BEFORE)
    try:
        old = old_apps.get_model("gradecast_openedx", "AppliedScore")
        rows = [
            old.objects.create(
                submission_id=submission_id,
                submission_sequence=sequence,
                event_id=uuid.uuid4(),
                event_time=APPLIED_AT,
            )
            for submission_id, sequence in ((70_001, 3), (2**53 + 5, 1))
        ]
        # auto_now stamps the time of the save: set the stored one to a known value.
        old.objects.update(applied_at=APPLIED_AT)
        migrate_to(AFTER)
        yield rows
    finally:
        migrate_to(AFTER)


def test_migration_0002_keeps_every_row_with_an_empty_queue(rows_written_before_0002):
    migrated = AppliedScore.objects.order_by("submission_id")
    assert [
        (r.queue_name, r.submission_id, r.submission_sequence, r.event_id, r.event_time)
        for r in migrated
    ] == [
        ("", r.submission_id, r.submission_sequence, r.event_id, APPLIED_AT)
        for r in rows_written_before_0002
    ]
    assert {r.applied_at for r in migrated} == {APPLIED_AT}


def test_after_0002_the_same_submission_id_gets_a_row_per_queue(rows_written_before_0002):
    sent: list[int] = []

    def send(event):
        sent.append(event.submission_sequence)

    old = rows_written_before_0002[0]
    # The very event an old row records, delivered again across the upgrade: not applied twice.
    again = apply_score_event(score_event("py-q", old.submission_id, 3, old.event_id), send)
    assert (again.outcome, again.applied_sequence, sent) == (Outcome.ALREADY_APPLIED, 3, [])
    # Any other event of that id is one of a queue's own submission, first applied now.
    for queue_name in ("py-q", "py-r"):
        result = apply_score_event(
            score_event(queue_name, old.submission_id, 1, uuid.uuid4()), send
        )
        assert result.outcome == Outcome.APPLIED
    later = apply_score_event(score_event("py-r", old.submission_id, 1, uuid.uuid4()), send)
    assert later.outcome == Outcome.ALREADY_APPLIED
    assert sent == [1, 1]
    assert sorted(
        AppliedScore.objects.filter(submission_id=old.submission_id).values_list(
            "queue_name", "submission_sequence"
        )
    ) == [("", 3), ("py-q", 1), ("py-r", 1)]


def test_0002_cannot_be_unapplied_once_two_queues_share_an_id(rows_written_before_0002):
    old = rows_written_before_0002[0]
    AppliedScore.objects.create(
        queue_name="py-q",
        submission_id=old.submission_id,
        submission_sequence=1,
        event_id=uuid.uuid4(),
        event_time=APPLIED_AT,
    )
    with pytest.raises(RuntimeError, match=rf"submission ids {old.submission_id} have rows"):
        migrate_to(BEFORE)
    assert AppliedScore.objects.filter(submission_id=old.submission_id).count() == 2
