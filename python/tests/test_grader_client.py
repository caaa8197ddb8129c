"""The grader package against a real gradecast: scores, refusals with google.rpc field
violations, tokens; and its retries against a scripted gRPC server (alone, or in front of the
real gradecast)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import uuid
from concurrent import futures

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from conftest import score_data
from gradecast.v1 import score_pb2, score_service_pb2, score_service_pb2_grpc
from gradecast_client import (
    SCORE_SERVICE_CONFIG,
    PlaintextTokenError,
    RetryPolicy,
    ScoreCallError,
    ScoreClient,
    ScoreRefusedError,
    service_config_json,
)
from harness.certificates import make_server_certificates
from harness.gradecast_server import GRADER_NAME, STREAM, GradecastServer
from harness.nats_reads import stream_messages
from harness.processes import REPO_ROOT, free_port
from harness.waiting import wait_for

BIG_SUBMISSION_ID = 2**53 + 1  # no float can hold it: it must cross as an exact int64
QUICK_RETRY = RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.05)


def test_a_score_is_accepted_published_and_returned_by_get_score(grader):
    sent = score_data("py-client", submission_id=BIG_SUBMISSION_ID)

    response = grader.submit_score(sent)

    assert uuid.UUID(response.event_id).version == 7
    assert (response.replayed, response.published, response.submission_sequence) == (
        False,
        True,
        1,
    )
    found = grader.get_score(BIG_SUBMISSION_ID)
    assert found.published
    assert found.event.metadata.id == response.event_id
    assert found.event.metadata.time == response.event_time
    assert found.event.metadata.source.endswith(f"/{GRADER_NAME}")
    assert found.event.score_data == sent
    assert found.event.score_data.submission_id == BIG_SUBMISSION_ID


def test_a_score_can_be_given_as_keyword_fields(grader):
    fields = {
        name: getattr(score_data("py-client"), name)
        for name in score_pb2.ExternalGraderScoreData.DESCRIPTOR.fields_by_name
    }
    response = grader.submit_score(**fields)
    assert grader.get_score(fields["submission_id"]).event.metadata.id == response.event_id


def test_a_repeated_score_returns_the_first_answer(grader):
    sent = score_data("py-client")
    first = grader.submit_score(sent)
    again = grader.submit_score(sent)
    assert again.replayed
    assert (again.event_id, again.event_time, again.submission_sequence) == (
        first.event_id,
        first.event_time,
        1,
    )


def test_a_refused_score_raises_every_field_violation_as_google_rpc_types(grader):
    refused = score_data("py-client", points_earned=11, course_id="")

    with pytest.raises(ScoreRefusedError) as caught:
        grader.submit_score(refused)

    error = caught.value
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.attempts == 1
    assert isinstance(error.status, status_pb2.Status)
    assert error.status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert all(isinstance(v, error_details_pb2.BadRequest.FieldViolation) for v in error.violations)
    assert [v.field for v in error.violations] == [
        "score_data.points_earned",
        "score_data.course_id",
    ]
    assert "<= points_possible (10), got 11" in error.violations[0].description
    assert error.violations[1].description == "required"
    # Nothing was stored: looking it up is NOT_FOUND, a failed call but no refusal.
    with pytest.raises(ScoreCallError) as lookup:
        grader.get_score(refused.submission_id)
    assert lookup.value.code is grpc.StatusCode.NOT_FOUND
    assert not isinstance(lookup.value, ScoreRefusedError)


def test_a_submission_reused_for_another_learner_is_refused(grader):
    first = score_data("py-client")
    grader.submit_score(first)
    with pytest.raises(ScoreRefusedError) as caught:
        grader.submit_score(score_data("py-client", submission_id=first.submission_id, user_id="x"))
    assert caught.value.code is grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize(
    ("token", "queue_name", "code"),
    [
        ("gradecast_not-a-real-token", "py-client", grpc.StatusCode.UNAUTHENTICATED),
        (None, "py-client", grpc.StatusCode.UNAUTHENTICATED),
        ("<the grader's>", "another-queue", grpc.StatusCode.PERMISSION_DENIED),
    ],
)
def test_a_call_without_the_right_token_fails_without_retries(gradecast, token, queue_name, code):
    if token == "<the grader's>":
        token = gradecast.token
    with ScoreClient(gradecast.address, token=token, retry=QUICK_RETRY) as client:
        with pytest.raises(ScoreCallError) as caught:
            client.submit_score(score_data(queue_name))
    assert caught.value.code is code
    assert caught.value.attempts == 1
    assert not isinstance(caught.value, ScoreRefusedError)


@pytest.mark.parametrize(
    ("address", "options", "is_refused"),
    [
        ("gradecast.example.invalid:50051", {}, True),
        ("10.1.2.3:50051", {}, True),
        ("127.0.0.1:50051", {}, False),
        ("127.8.9.10:50051", {}, False),
        ("localhost:50051", {}, False),
        ("[::1]:50051", {}, False),
        ("gradecast.example.invalid:50051", {"allow_plaintext_token": True}, False),
        ("gradecast.example.invalid:443", {"tls": True}, False),
    ],
)
def test_a_token_is_never_sent_in_plaintext_beyond_loopback_unless_allowed(
    address, options, is_refused
):
    # Channels connect on the first call, which none of these make.
    if is_refused:
        with pytest.raises(PlaintextTokenError, match="without TLS"):
            ScoreClient(address, token="secret", **options)
    else:
        ScoreClient(address, token="secret", **options).close()
    ScoreClient(address, **options).close()  # no token, nothing to protect


class ScriptedScoreService(score_service_pb2_grpc.ScoreServiceServicer):
    """Answers SubmitScore with the scripted failures first, then OK, or what `upstream` (a
    real gradecast) answers; keeps every request's bytes and `grpc-previous-rpc-attempts` (the
    attempts gRPC's retry made before). A `DEADLINE` step answers only once the client has given
    up on the call; `LOSE_ANSWER` forwards to `upstream`, then answers UNAVAILABLE."""

    def __init__(
        self,
        script: list[grpc.StatusCode | str],
        upstream: score_service_pb2_grpc.ScoreServiceStub | None = None,
    ) -> None:
        self.script = list(script)
        self.upstream = upstream
        self.requests: list[bytes] = []
        self.previous_attempts: list[str | None] = []

    def SubmitScore(self, request, context):  # noqa: N802 - the generated name
        self.requests.append(request.SerializeToString())
        metadata = dict(context.invocation_metadata())
        self.previous_attempts.append(metadata.get("grpc-previous-rpc-attempts"))
        step = self.script.pop(0) if self.script else None
        if step == "DEADLINE":
            gone = threading.Event()
            context.add_callback(gone.set)
            gone.wait(30)
        elif step == "LOSE_ANSWER":
            self._forward(request, metadata)
            context.abort(grpc.StatusCode.UNAVAILABLE, "scripted: answer lost")
        elif step is not None:
            context.abort(step, f"scripted {step.name}")
        if self.upstream is not None:
            return self._forward(request, metadata)
        return score_service_pb2.SubmitScoreResponse(
            event_id="019ac4d2-3f6e-7d55-9b43-3f1c1b5d9a11", submission_sequence=1
        )

    def _forward(self, request, metadata):
        assert self.upstream is not None, "LOSE_ANSWER needs an upstream"
        token = (("authorization", metadata["authorization"]),)
        return self.upstream.SubmitScore(request, metadata=token, timeout=30)


@pytest.fixture
def scripted_server():
    servers = []
    channels = []

    def start(script, upstream_address=None):
        upstream = None
        if upstream_address is not None:
            # Retries off: each attempt the front gets is forwarded once, as it came.
            channel = grpc.insecure_channel(upstream_address, options=(("grpc.enable_retries", 0),))
            channels.append(channel)
            upstream = score_service_pb2_grpc.ScoreServiceStub(channel)
        service = ScriptedScoreService(script, upstream)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        score_service_pb2_grpc.add_ScoreServiceServicer_to_server(service, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return service, f"127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop(grace=None)
    for channel in channels:
        channel.close()


UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    ("script", "previous_attempts"),
    [
        # The channel's service config: one call, three attempts.
        ([UNAVAILABLE, UNAVAILABLE], [None, "1", "2"]),
        # The client: a second call with a fresh deadline.
        (["DEADLINE"], [None, None]),
        # Both: the channel retries UNAVAILABLE, that attempt times out, the client sends again.
        ([UNAVAILABLE, "DEADLINE"], [None, "1", None]),
    ],
)
def test_unavailable_and_deadline_exceeded_are_retried_with_the_identical_request(
    scripted_server, script, previous_attempts
):
    service, address = scripted_server(script)
    sent = score_data("py-retry")
    with ScoreClient(address, deadline_s=0.5, retry=QUICK_RETRY) as client:
        response = client.submit_score(sent)
    assert response.event_id == "019ac4d2-3f6e-7d55-9b43-3f1c1b5d9a11"
    expected = score_service_pb2.SubmitScoreRequest(score_data=sent).SerializeToString()
    assert service.requests == [expected] * len(previous_attempts)
    assert service.previous_attempts == previous_attempts


@pytest.mark.parametrize(
    ("script", "code", "sent"),
    [
        # SCORE_SERVICE_CONFIG's maxAttempts, all inside one call of the client.
        ([UNAVAILABLE] * 6, UNAVAILABLE, 5),
        ([grpc.StatusCode.INTERNAL], grpc.StatusCode.INTERNAL, 1),
        ([grpc.StatusCode.RESOURCE_EXHAUSTED], grpc.StatusCode.RESOURCE_EXHAUSTED, 1),
    ],
)
def test_a_call_gives_up_after_its_attempts_or_on_a_code_that_retrying_cannot_fix(
    scripted_server, script, code, sent
):
    service, address = scripted_server(script)
    with ScoreClient(address, deadline_s=5, retry=QUICK_RETRY) as client:
        with pytest.raises(ScoreCallError) as caught:
            client.submit_score(score_data("py-retry"))
    assert (caught.value.code, caught.value.attempts) == (code, 1)
    assert len(service.requests) == sent


@pytest.mark.parametrize(
    ("service_config", "sent"),
    [
        (None, 1),
        (
            {
                "methodConfig": [
                    {
                        "name": [{"service": "gradecast.v1.ScoreService"}],
                        "retryPolicy": {
                            "maxAttempts": 2,
                            "initialBackoff": "0.01s",
                            "maxBackoff": "0.01s",
                            "backoffMultiplier": 1,
                            "retryableStatusCodes": ["UNAVAILABLE"],
                        },
                    }
                ]
            },
            2,
        ),
    ],
    ids=["None: no retries", "a config of 2 attempts"],
)
def test_the_callers_service_config_replaces_the_default(scripted_server, service_config, sent):
    service, address = scripted_server([UNAVAILABLE] * 3)
    with ScoreClient(address, service_config=service_config, retry=QUICK_RETRY) as client:
        with pytest.raises(ScoreCallError) as caught:
            client.submit_score(score_data("py-retry"))
    assert caught.value.code is UNAVAILABLE
    assert len(service.requests) == sent


@pytest.mark.parametrize(
    ("script", "previous_attempts", "is_replayed"),
    [
        # gradecast never saw the first two attempts.
        ([UNAVAILABLE, UNAVAILABLE], [None, "1", "2"], False),
        # gradecast stored the score, its answer was lost: the retry is answered as a replay.
        (["LOSE_ANSWER"], [None, "1"], True),
    ],
    ids=["refused before gradecast", "answer lost after gradecast"],
)
def test_a_retried_submit_score_reaches_gradecast_and_is_stored_and_published_once(
    scripted_server, gradecast, nats_server, script, previous_attempts, is_replayed
):
    service, address = scripted_server(script, upstream_address=gradecast.address)
    sent = score_data("py-retry")

    with ScoreClient(address, token=gradecast.token) as client:
        response = client.submit_score(sent)

    assert service.previous_attempts == previous_attempts
    assert (response.replayed, response.submission_sequence) == (is_replayed, 1)
    with ScoreClient(gradecast.address, token=gradecast.token) as direct:
        stored = direct.get_score(sent.submission_id)
    assert stored.event.metadata.id == response.event_id
    assert stored.event.score_data == sent
    copies = wait_for(
        lambda: [
            m
            for m in stream_messages(nats_server.url, STREAM)
            if m.headers.get("Nats-Msg-Id") == response.event_id
        ],
        "the event is published",
    )
    assert len(copies) == 1


def test_the_python_service_config_is_the_typescript_clients():
    node = shutil.which("node")
    assert node, "node is needed to read the TypeScript client's config"
    module = REPO_ROOT / "dist" / "src" / "client" / "service-config.js"
    script = (
        f"import {{ SCORE_SERVICE_CONFIG }} from {json.dumps(module.as_uri())};"
        "console.log(JSON.stringify(SCORE_SERVICE_CONFIG));"
    )
    done = subprocess.run(
        [node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    typescript = json.loads(done.stdout)
    assert typescript == SCORE_SERVICE_CONFIG
    assert json.loads(service_config_json()) == typescript
    assert typescript["methodConfig"][0]["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]


def test_a_server_that_is_not_there_is_unavailable_once_the_channel_has_retried():
    with ScoreClient(f"127.0.0.1:{free_port()}", deadline_s=5, retry=QUICK_RETRY) as client:
        with pytest.raises(ScoreCallError) as caught:
            client.submit_score(score_data("py-retry"))
    assert (caught.value.code, caught.value.attempts) == (grpc.StatusCode.UNAVAILABLE, 1)


def test_the_package_imports_cleanly_beside_grpcio_status_and_googleapis_common_protos():
    # A fresh interpreter, warnings as errors: a second google/rpc/status.proto would clash in
    # protobuf's descriptor pool, and old generated code would warn about the runtime.
    script = """
import importlib.metadata, json
from grpc_status import rpc_status
from google.rpc import status_pb2, error_details_pb2, code_pb2
import gradecast_client
from gradecast.v1 import event_pb2, score_service_pb2_grpc
files = [str(f) for f in importlib.metadata.distribution("gradecast").files]
print(json.dumps({
    "status_pb2": status_pb2.__file__,
    "status_owner": [d.metadata["Name"] for d in importlib.metadata.distributions()
                     if any(str(f) == "google/rpc/status_pb2.py" for f in d.files or [])],
    "gradecast_google_files": [f for f in files if f.startswith("google")],
}))
"""
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["status_owner"] == ["googleapis-common-protos"]
    assert found["gradecast_google_files"] == []


@pytest.fixture(scope="module")
def tls_gradecast(nats_server, tmp_path_factory):
    """A second gradecast, serving over TLS with a throwaway CA, on a stream of its own."""
    work_dir = tmp_path_factory.mktemp("gradecast-tls")
    certificates = make_server_certificates(work_dir)
    server = GradecastServer(
        work_dir,
        nats_server.url,
        stream="GRADECAST_TLS",
        subject_prefix="gradecast-tls",
        certificates=certificates,
    )
    yield server, certificates
    server.stop()


def test_a_token_goes_over_tls_to_a_server_its_ca_vouches_for(tls_gradecast):
    server, certificates = tls_gradecast
    sent = score_data("py-tls")
    with ScoreClient(server.address, token=server.token, tls_ca_file=certificates.ca) as client:
        response = client.submit_score(sent)
        assert client.get_score(sent.submission_id).event.metadata.id == response.event_id


@pytest.mark.parametrize("options", [{"tls": True}, {}], ids=["system roots", "plaintext"])
def test_a_server_that_tls_does_not_vouch_for_is_unavailable(tls_gradecast, options):
    server, _ = tls_gradecast
    # No token: the first attempt must fail on the channel, not on authentication.
    with ScoreClient(server.address, retry=QUICK_RETRY, **options) as client:
        with pytest.raises(ScoreCallError) as caught:
            client.submit_score(score_data("py-tls"))
    assert (caught.value.code, caught.value.attempts) == (grpc.StatusCode.UNAVAILABLE, 1)
