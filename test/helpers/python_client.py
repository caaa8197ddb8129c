"""A Python grader calling gradecast over gRPC, for the TypeScript interop tests.

Run from the repo root with Debian's /usr/bin/python3 and PYTHONPATH=gen/python.
  submit ADDRESS    read an ExternalGraderScoreData as proto3 JSON on stdin, send it to
                    SubmitScore at ADDRESS (host:port) and print the outcome as JSON:
                    {"response": {...}} (proto field names, defaults included), or
                    {"error": {"code", "code_name", "details", "status_code", "fields"}}
                    where `fields` are the google.rpc.BadRequest field violations read
                    from the `grpc-status-details-bin` trailer.
Exits non-zero only when the script itself fails.
"""
import json
import sys

import grpc
from google.protobuf import json_format

from gradecast.v1 import score_pb2, score_service_pb2, score_service_pb2_grpc
from vendored_google_rpc import BadRequest, Status

STATUS_DETAILS_TRAILER = "grpc-status-details-bin"
CALL_TIMEOUT_S = 10


def rich_status(error):
    """The google.rpc.Status of the error's trailer, or None when it carries none."""
    for key, value in error.trailing_metadata() or ():
        if key == STATUS_DETAILS_TRAILER:
            return Status.FromString(value)
    return None


def field_violations(status):
    violations = []
    for detail in status.details:
        if detail.Is(BadRequest.DESCRIPTOR):
            bad_request = BadRequest()
            detail.Unpack(bad_request)
            violations.extend(
                {"field": v.field, "description": v.description}
                for v in bad_request.field_violations
            )
    return violations


def submit(address):
    score_data = json_format.Parse(sys.stdin.read(), score_pb2.ExternalGraderScoreData())
    request = score_service_pb2.SubmitScoreRequest(score_data=score_data)
    with grpc.insecure_channel(address) as channel:
        stub = score_service_pb2_grpc.ScoreServiceStub(channel)
        try:
            response = stub.SubmitScore(request, timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as error:
            status = rich_status(error)
            return {
                "error": {
                    "code": error.code().value[0],
                    "code_name": error.code().name,
                    "details": error.details(),
                    "status_code": None if status is None else status.code,
                    "fields": [] if status is None else field_violations(status),
                }
            }
    return {
        "response": json_format.MessageToDict(
            response, preserving_proto_field_name=True, including_default_value_fields=True
        )
    }


def main():
    mode = sys.argv[1]
    if mode == "submit":
        print(json.dumps(submit(sys.argv[2])))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
