"""Session servers (nats-server, gradecast) and per-test graders and LMS workers."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest

from gradecast.v1 import score_pb2
from gradecast_client import RetryPolicy, ScoreClient
from harness.gradecast_server import GradecastServer
from harness.lms_worker import LmsWorker, WorkerFiles
from harness.nats_server import NatsServer

_submission_ids = itertools.count(10_000)


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path_factory.mktemp("nats"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gradecast(nats_server: NatsServer, tmp_path_factory) -> Iterator[GradecastServer]:
    server = GradecastServer(tmp_path_factory.mktemp("gradecast"), nats_server.url)
    yield server
    server.stop()


@pytest.fixture
def grader(gradecast: GradecastServer) -> Iterator[ScoreClient]:
    """The Python grader client, with the test grader's token."""
    with ScoreClient(
        gradecast.address, token=gradecast.token, retry=RetryPolicy(initial_backoff_s=0.05)
    ) as client:
        yield client


def score_data(queue_name: str, **fields: object) -> score_pb2.ExternalGraderScoreData:
    """A valid score of a new submission on `queue_name`; `fields` override any field."""
    submission_id = fields.pop("submission_id", None) or next(_submission_ids)
    values = {
        "points_possible": 10,
        "points_earned": 7,
        "course_id": "course-v1:edX+DemoX+Demo_Course",
        "score_msg": '{"correct": true, "score": 0.7, "msg": "<p>Presque: 7/10 ✓</p>"}',
        "submission_id": submission_id,
        "user_id": "106ecd878f4148a5cabb6bbb0979b730",
        "module_id": (
            "block-v1:edX+DemoX+Demo_Course+type@problem+block@d2e35c1d294b4ba0b3b1048615605d2a"
        ),
        "queue_key": f"key-{submission_id}",
        "queue_name": queue_name,
    }
    values.update(fields)
    return score_pb2.ExternalGraderScoreData(**values)


@pytest.fixture
def worker_files(tmp_path) -> WorkerFiles:
    return WorkerFiles(tmp_path / "lms")


@pytest.fixture
def start_worker(
    nats_server: NatsServer, gradecast: GradecastServer, worker_files: WorkerFiles
) -> Iterator[Callable[..., LmsWorker]]:
    """Starts `consume_gradecast_scores` workers (GRADECAST_* settings as keywords); whatever
    is still running at the end of the test is killed."""
    started: list[LmsWorker] = []

    def start(name: str = "worker", **settings: object) -> LmsWorker:
        worker = LmsWorker(worker_files, nats_server.url, name, **settings)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill9()
