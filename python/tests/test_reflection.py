"""gradecast's server reflection, read by a client that is not ours: grpcio-reflection's
ProtoReflectionDescriptorDatabase. Every type below comes from a DescriptorPool built from
reflection alone; nothing of gradecast.v1 or googleapis-common-protos is used to decode."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from conftest import score_data
from gradecast.v1 import score_pb2
from harness.gradecast_server import GradecastServer

SCORE_FIELDS = [
    "points_possible",
    "points_earned",
    "course_id",
    "score_msg",
    "submission_id",
    "user_id",
    "module_id",
    "queue_key",
    "queue_name",
]


class ReflectedContract:
    """A channel to gradecast and a descriptor pool whose only source is its reflection."""

    def __init__(self, gradecast: GradecastServer) -> None:
        self.channel = grpc.insecure_channel(gradecast.address)
        self.database = ProtoReflectionDescriptorDatabase(self.channel)
        self.pool = descriptor_pool.DescriptorPool(self.database)
        self.metadata = (("authorization", f"Bearer {gradecast.token}"),)

    def message_class(self, full_name: str):
        return message_factory.GetMessageClass(self.pool.FindMessageTypeByName(full_name))

    def submit_score(self, score_fields: dict[str, object]):
        """Calls SubmitScore with messages built from the pool: (response, error)."""
        method = self.pool.FindMethodByName("gradecast.v1.ScoreService.SubmitScore")
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        call = self.channel.unary_unary(
            f"/{method.containing_service.full_name}/{method.name}",
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        request = request_class()
        for name, value in score_fields.items():
            setattr(request.score_data, name, value)
        return call(request, metadata=self.metadata, timeout=30)


@pytest.fixture
def reflected(gradecast: GradecastServer) -> Iterator[ReflectedContract]:
    contract = ReflectedContract(gradecast)
    yield contract
    contract.channel.close()


def fields_of(score: score_pb2.ExternalGraderScoreData) -> dict[str, object]:
    return {name: getattr(score, name) for name in SCORE_FIELDS}


def test_reflection_lists_score_service_health_and_itself(reflected):
    assert set(reflected.database.get_services()) == {
        "gradecast.v1.ScoreService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    }


def test_score_service_is_described_from_its_real_proto_file(reflected):
    service = reflected.pool.FindServiceByName("gradecast.v1.ScoreService")

    assert service.file.name == "gradecast/v1/score_service.proto"
    assert [d.name for d in service.file.dependencies] == [
        "gradecast/v1/event.proto",
        "gradecast/v1/score.proto",
        "google/protobuf/timestamp.proto",
    ]
    methods = {m.name: (m.input_type.full_name, m.output_type.full_name) for m in service.methods}
    assert methods == {
        "SubmitScore": ("gradecast.v1.SubmitScoreRequest", "gradecast.v1.SubmitScoreResponse"),
        "GetScore": ("gradecast.v1.GetScoreRequest", "gradecast.v1.GetScoreResponse"),
    }
    event_time = service.methods_by_name["SubmitScore"].output_type.fields_by_name["event_time"]
    assert event_time.message_type.full_name == "google.protobuf.Timestamp"
    assert event_time.message_type.file.name == "google/protobuf/timestamp.proto"


def test_external_grader_score_data_has_its_snake_case_fields_and_types(reflected):
    message = reflected.pool.FindMessageTypeByName("gradecast.v1.ExternalGraderScoreData")

    assert message.file.name == "gradecast/v1/score.proto"
    assert [field.name for field in message.fields] == SCORE_FIELDS
    assert [field.number for field in message.fields] == list(range(1, 10))
    # The reflected message is field for field the one the generated stubs were compiled from.
    compiled = score_pb2.ExternalGraderScoreData.DESCRIPTOR
    assert [(f.name, f.number, f.type) for f in message.fields] == [
        (f.name, f.number, f.type) for f in compiled.fields
    ]
    assert message is not compiled


def test_the_event_type_custom_option_survives_reflection(reflected):
    envelope = reflected.pool.FindMessageTypeByName("gradecast.v1.ExternalGraderScoreSubmitted")
    extension = reflected.pool.FindExtensionByName("gradecast.v1.event_type")

    assert extension.file.name == "gradecast/v1/options.proto"
    assert extension.containing_type.full_name == "google.protobuf.MessageOptions"
    assert (
        b"org.openedx.content_authoring.external_grader.score.submitted.v1"
        in envelope.GetOptions().SerializeToString()
    )


def test_submit_score_accepts_a_message_built_from_reflection(reflected, grader):
    sent = score_data("py-reflection")

    response = reflected.submit_score(fields_of(sent))

    assert response.DESCRIPTOR.full_name == "gradecast.v1.SubmitScoreResponse"
    assert response.DESCRIPTOR.file.pool is reflected.pool
    assert (response.replayed, response.submission_sequence) == (False, 1)
    assert response.event_time.seconds > 0
    # The generated client sees the score the reflected call stored.
    stored = grader.get_score(sent.submission_id)
    assert stored.event.metadata.id == response.event_id
    assert stored.event.score_data == sent


def test_a_refused_score_carries_a_bad_request_the_reflected_pool_decodes(reflected, grader):
    refused = score_data("py-reflection", points_earned=11, course_id="")

    with pytest.raises(grpc.RpcError) as caught:
        reflected.submit_score(fields_of(refused))

    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    trailer = dict(caught.value.trailing_metadata())["grpc-status-details-bin"]
    status = reflected.message_class("google.rpc.Status").FromString(trailer)
    assert status.DESCRIPTOR.file.name == "google/rpc/status.proto"
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    [detail] = status.details
    assert detail.type_url == "type.googleapis.com/google.rpc.BadRequest"
    bad_request = reflected.message_class("google.rpc.BadRequest").FromString(detail.value)
    assert bad_request.DESCRIPTOR.file.name == "google/rpc/error_details.proto"
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("score_data.points_earned", "must be <= points_possible (10), got 11"),
        ("score_data.course_id", "required"),
    ]
