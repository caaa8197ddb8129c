"""The LMS bridge end to end: the Python grader submits to a real gradecast, which publishes to
a real nats-server, and `consume_gradecast_scores` runs in a fake LMS whose receiver is
connected to openedx-events' own EXTERNAL_GRADER_SCORE_SUBMITTED signal."""

from __future__ import annotations

from datetime import UTC

import openedx_events
import pytest

from conftest import score_data
from fake_lms.gradebook.models import GradebookWrite
from gradecast.v1 import score_pb2
from gradecast_openedx.models import AppliedScore
from harness.gradecast_server import DEAD_LETTER_STREAM, STREAM, gradecast_command
from harness.nats_reads import consumer_counts, publish, stream_messages
from harness.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

UPSTREAM_EVENT_TYPE = "org.openedx.learning.external_grader.score.submitted.v1"
SCORE_FIELDS = list(score_pb2.ExternalGraderScoreData.DESCRIPTOR.fields_by_name)


def stored_event(nats_url: str, event_id: str):
    """The message of the event stream whose ce-id is `event_id`."""
    found = [m for m in stream_messages(nats_url, STREAM) if m.headers.get("ce-id") == event_id]
    assert len(found) == 1, f"{len(found)} messages carry event {event_id}"
    return found[0]


def dead_letters_of(nats_url: str, event_id: str):
    return [
        m
        for m in stream_messages(nats_url, DEAD_LETTER_STREAM)
        if m.headers.get("ce-id") == event_id
    ]


def is_settled(nats_url: str, durable: str) -> bool:
    """Nothing left to deliver and nothing delivered without an ack (or a term)."""
    return consumer_counts(nats_url, STREAM, durable) == (0, 0)


def test_a_score_from_the_python_grader_reaches_the_upstream_receiver_with_every_field_equal(
    nats_server, grader, start_worker, worker_files
):
    worker = start_worker(queues=["py-e2e"], durable_name="lms-e2e")
    sent = score_data("py-e2e", submission_id=2**53 + 3)  # above 2^53, like a real big id

    response = grader.submit_score(sent)

    # Committed after the receiver returned, in the same transaction as its writes.
    applied = wait_for(
        lambda: AppliedScore.objects.filter(submission_id=sent.submission_id).first(),
        "the score to be applied",
        details=worker.output,
    )
    assert len(worker_files.calls_of(response.event_id, "returned")) == 1
    [call] = worker_files.calls_of(response.event_id, "started")
    assert call["score"] == {name: getattr(sent, name) for name in SCORE_FIELDS}
    assert call["score_class"] == "openedx_events.learning.data.ExternalGraderScoreData"
    assert call["signal_event_type"] == UPSTREAM_EVENT_TYPE
    published = grader.get_score(sent.submission_id).event.metadata
    assert call["metadata"] == {
        "id": response.event_id,
        "event_type": UPSTREAM_EVENT_TYPE,
        "minorversion": 0,
        "source": published.source,
        "sourcehost": published.sourcehost,
        "time": response.event_time.ToDatetime(tzinfo=UTC).isoformat(),
        "sourcelib": [int(part) for part in openedx_events.__version__.split(".")],
    }
    assert call["from_event_bus"] is True

    assert (str(applied.event_id), applied.submission_sequence) == (response.event_id, 1)
    assert GradebookWrite.objects.filter(submission_id=sent.submission_id).count() == 1
    wait_for(lambda: is_settled(nats_server.url, "lms-e2e"), "the event to be acknowledged")

    assert worker.stop() == 0, worker.output()
    health = worker_files.health_status()
    assert health["state"] == "stopped"
    assert health["counts"] == {"applied": 1}


def test_a_failing_receiver_gets_the_event_again_later_then_it_is_dead_lettered_and_redriven(
    nats_server, grader, start_worker, worker_files
):
    # A queue name with a dot: its subject token is escaped the same way in both languages.
    sent = score_data("py.dotted")
    worker_files.set_plan({"fail": [{"submission_id": sent.submission_id, "times": -1}]})
    worker = start_worker(
        queues=["py.dotted"], durable_name="lms-dlq", max_deliver=3, backoff_s=[0.5, 1.0]
    )

    event_id = grader.submit_score(sent).event_id

    [dead_letter] = wait_for(
        lambda: dead_letters_of(nats_server.url, event_id),
        "the event to be dead-lettered",
        details=worker.output,
    )
    started = worker_files.calls_of(event_id, "started")
    raised = worker_files.calls_of(event_id, "raised")
    assert (len(started), len(raised)) == (3, 3)
    # Each redelivery waits its backoff after the failure (JetStream holds it for the nak delay).
    assert started[1]["at"] - raised[0]["at"] >= 0.45
    assert started[2]["at"] - raised[1]["at"] >= 0.95

    original = stored_event(nats_server.url, event_id)
    assert original.subject == "gradecast.scores.v1.py%2Edotted"
    assert dead_letter.subject == "gradecast.dlq.v1.py%2Edotted"
    assert dead_letter.data == original.data
    assert dead_letter.headers["gradecast-dlq-reason"] == "max-deliver"
    assert dead_letter.headers["gradecast-dlq-error"] == (
        f"RuntimeError: gradebook refused submission {sent.submission_id}"
    )
    assert dead_letter.headers["gradecast-dlq-delivery-count"] == "3"
    assert dead_letter.headers["gradecast-dlq-consumer"] == "lms-dlq"
    assert dead_letter.headers["gradecast-dlq-original-subject"] == original.subject
    assert dead_letter.headers["gradecast-dlq-stream-sequence"] == str(original.sequence)
    assert {k: v for k, v in dead_letter.headers.items() if k.startswith("ce-")} == {
        k: v for k, v in original.headers.items() if k.startswith("ce-")
    }
    # The receiver's writes were rolled back with each failed attempt.
    assert not AppliedScore.objects.filter(submission_id=sent.submission_id).exists()
    assert not GradebookWrite.objects.filter(submission_id=sent.submission_id).exists()
    wait_for(lambda: is_settled(nats_server.url, "lms-dlq"), "the original to be terminated")

    # The LMS is fixed; the operator re-drives the dead letter with gradecast's own CLI.
    worker_files.set_plan({})
    gradecast_command("dlq", "redrive", str(dead_letter.sequence), "--nats-url", nats_server.url)

    applied = wait_for(
        lambda: AppliedScore.objects.filter(submission_id=sent.submission_id).first(),
        "the re-driven event to be applied",
        details=worker.output,
    )
    assert len(worker_files.calls_of(event_id, "returned")) == 1
    assert (str(applied.event_id), applied.submission_sequence) == (event_id, 1)
    assert GradebookWrite.objects.filter(submission_id=sent.submission_id).count() == 1
    assert dead_letters_of(nats_server.url, event_id) == []


def test_a_regrade_delivered_after_a_newer_one_is_not_applied_over_it(
    nats_server, grader, start_worker, worker_files
):
    first = score_data("py-order", points_earned=3)
    submission_id = first.submission_id
    regrades = [
        score_data("py-order", submission_id=submission_id, points_earned=p) for p in (5, 9)
    ]
    ids = [grader.submit_score(s).event_id for s in (first, *regrades)]
    assert [grader.get_score(submission_id).event.submission_sequence] == [3]
    # Sequence 2 fails once: its redelivery comes after sequence 3 was applied.
    worker_files.set_plan(
        {"fail": [{"submission_id": submission_id, "points_earned": 5, "times": 1}]}
    )

    worker = start_worker(queues=["py-order"], durable_name="lms-order", backoff_s=[1.0])

    wait_for(
        lambda: (worker_files.health_status() or {}).get("counts", {}).get("already-applied"),
        "the late regrade to be skipped",
        details=worker.output,
    )
    assert [len(worker_files.calls_of(i, "returned")) for i in ids] == [1, 0, 1]
    assert len(worker_files.calls_of(ids[1], "started")) == 1  # the failed try only
    applied = AppliedScore.objects.get(submission_id=submission_id)
    assert (str(applied.event_id), applied.submission_sequence) == (ids[2], 3)
    writes = GradebookWrite.objects.filter(submission_id=submission_id).order_by("id")
    assert [w.points_earned for w in writes] == [3, 9]
    wait_for(lambda: is_settled(nats_server.url, "lms-order"), "every event to be acknowledged")


def test_a_worker_killed_mid_batch_loses_nothing_and_applies_nothing_twice(
    nats_server, grader, start_worker, worker_files
):
    scores = [score_data("py-kill") for _ in range(6)]
    ids = [grader.submit_score(s).event_id for s in scores]
    held = scores[2].submission_id
    worker_files.set_plan({"hold": [held]})
    settings = {"queues": ["py-kill"], "durable_name": "lms-kill", "ack_wait_s": 2}

    first = start_worker("first", **settings)
    wait_for(
        lambda: worker_files.calls_of(ids[2], "held"),
        "the worker to be inside the third receiver call",
        details=first.output,
    )
    assert first.kill9() == -9
    worker_files.set_plan({})
    second = start_worker("second", **settings)

    wait_for(
        lambda: (
            AppliedScore.objects.filter(submission_id__in=[s.submission_id for s in scores]).count()
            == len(scores)
        ),
        "every score to be applied",
        details=second.output,
    )
    for event_id in ids:
        assert GradebookWrite.objects.filter(event_id=event_id).count() == 1, event_id
        assert len(worker_files.calls_of(event_id, "returned")) == 1, event_id
    # The held event was started twice (the first try died with the worker), applied once.
    assert len(worker_files.calls_of(ids[2], "started")) == 2
    wait_for(lambda: is_settled(nats_server.url, "lms-kill"), "every event to be acknowledged")
    assert second.stop() == 0, second.output()


def test_a_repeated_score_or_a_second_copy_of_its_event_calls_no_receiver_twice(
    nats_server, grader, start_worker, worker_files
):
    worker = start_worker(queues=["py-replay"], durable_name="lms-replay")
    sent = score_data("py-replay")

    first = grader.submit_score(sent)
    again = grader.submit_score(sent)  # what a grader's retry sends
    assert (again.replayed, again.event_id) == (True, first.event_id)
    wait_for(lambda: worker_files.calls_of(first.event_id, "returned"), "the score to be applied")
    # A second copy of the event on the stream (as a re-drive of an applied event would be).
    original = stored_event(nats_server.url, first.event_id)
    copy_headers = {k: v for k, v in original.headers.items() if k != "Nats-Msg-Id"}
    publish(
        nats_server.url, original.subject, original.data, {**copy_headers, "Nats-Msg-Id": "copy-1"}
    )
    marker = grader.submit_score(score_data("py-replay"))

    wait_for(
        lambda: worker_files.health_status()["counts"] == {"applied": 2, "already-applied": 1},
        "the copy to be skipped and a later score applied",
        details=lambda: f"{worker_files.health_status()}\n{worker.output()}",
    )
    assert len(worker_files.calls_of(first.event_id, "started")) == 1
    assert len(worker_files.calls_of(marker.event_id, "returned")) == 1
    assert GradebookWrite.objects.filter(event_id=first.event_id).count() == 1


def test_a_message_that_is_not_an_event_is_dead_lettered_at_once(
    nats_server, grader, start_worker, worker_files
):
    worker = start_worker(queues=["py-poison"], durable_name="lms-poison")
    publish(nats_server.url, "gradecast.scores.v1.py-poison", b"\xff not protobuf", {"ce-id": "x"})
    after = grader.submit_score(score_data("py-poison"))

    wait_for(
        lambda: worker_files.health_status()["counts"] == {"dead-lettered": 1, "applied": 1},
        "the message to be dead-lettered and the next event applied",
        details=lambda: f"{worker_files.health_status()}\n{worker.output()}",
    )
    assert len(worker_files.calls_of(after.event_id, "returned")) == 1
    [dead_letter] = [
        m
        for m in stream_messages(nats_server.url, DEAD_LETTER_STREAM)
        if m.subject == "gradecast.dlq.v1.py-poison"
    ]
    assert dead_letter.data == b"\xff not protobuf"
    assert dead_letter.headers["gradecast-dlq-reason"] == "decode"
    assert dead_letter.headers["gradecast-dlq-delivery-count"] == "1"


def test_the_same_submission_id_in_two_queues_is_applied_as_two_submissions(
    nats_server, grader, start_worker, worker_files
):
    in_a = score_data("py-two-a", points_earned=3)
    submission_id = in_a.submission_id
    # Another learner's submission in another queue that happens to carry the same id.
    in_b = score_data(
        "py-two-b", submission_id=submission_id, user_id="learner-of-b", points_earned=6
    )
    a_first = grader.submit_score(in_a)
    a_regrade = grader.submit_score(
        score_data("py-two-a", submission_id=submission_id, points_earned=9)
    )
    b_first = grader.submit_score(in_b)
    # gradecast keeps two histories: b's first score is sequence 1, not a conflict with a's.
    assert [a_first.submission_sequence, a_regrade.submission_sequence] == [1, 2]
    assert (b_first.replayed, b_first.submission_sequence) == (False, 1)

    # One worker per queue (NATS 2.9 takes one filter per consumer), into one LMS database:
    # queue a's submission is at sequence 2 before queue b's sequence 1 arrives.
    worker_a = start_worker("a", queues=["py-two-a"], durable_name="lms-two-a")
    wait_for(
        lambda: worker_files.calls_of(a_regrade.event_id, "returned"),
        "queue a's regrade to be applied",
        details=worker_a.output,
    )
    worker_b = start_worker("b", queues=["py-two-b"], durable_name="lms-two-b")
    wait_for(
        lambda: worker_files.calls_of(b_first.event_id, "returned"),
        "queue b's score to be applied",
        details=worker_b.output,
    )
    rows = AppliedScore.objects.filter(submission_id=submission_id).order_by("queue_name")
    assert [(r.queue_name, r.submission_sequence, str(r.event_id)) for r in rows] == [
        ("py-two-a", 2, a_regrade.event_id),
        ("py-two-b", 1, b_first.event_id),
    ]
    writes = GradebookWrite.objects.filter(submission_id=submission_id).order_by("id")
    assert [w.points_earned for w in writes] == [3, 9, 6]
    assert grader.get_score(submission_id, queue_name="py-two-b").event.score_data == in_b
    wait_for(
        lambda: (
            is_settled(nats_server.url, "lms-two-a") and is_settled(nats_server.url, "lms-two-b")
        ),
        "every event to be acknowledged",
    )
    assert (worker_a.stop(), worker_b.stop()) == (0, 0)
