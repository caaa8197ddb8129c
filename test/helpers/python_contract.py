"""Speaks the contract from Python, for the TypeScript interop tests.

Run from the repo root with Debian's /usr/bin/python3 and PYTHONPATH=gen/python.
  describe          print every gradecast/google.rpc message's fields (name, number, type) as JSON
                    (gradecast.v1 from gen/python; google.rpc from the vendored protos, which
                    gen/python leaves to googleapis-common-protos)
  decode HEX        decode an ExternalGraderScoreSubmitted, print it as proto3 JSON (field names kept)
  encode            read proto3 JSON of an ExternalGraderScoreSubmitted on stdin, print its bytes as hex
  event-type        print the envelope's (gradecast.v1.event_type) option
"""
import json
import sys

from google.protobuf import json_format

from gradecast.v1 import event_pb2, options_pb2, score_pb2, score_service_pb2
from vendored_google_rpc import BadRequest, Status

MODULES = [score_pb2, event_pb2, score_service_pb2]


def describe():
    out = {}

    def walk(descriptor):
        out[descriptor.full_name] = [
            {"name": f.name, "number": f.number, "type": f.type} for f in descriptor.fields
        ]
        for nested in descriptor.nested_types:
            walk(nested)

    for module in MODULES:
        for descriptor in module.DESCRIPTOR.message_types_by_name.values():
            walk(descriptor)
    for message in (BadRequest, Status):
        walk(message.DESCRIPTOR)
    print(json.dumps(out, sort_keys=True))


def main():
    mode = sys.argv[1]
    if mode == "describe":
        describe()
    elif mode == "decode":
        event = event_pb2.ExternalGraderScoreSubmitted.FromString(bytes.fromhex(sys.argv[2]))
        print(json_format.MessageToJson(event, preserving_proto_field_name=True))
    elif mode == "encode":
        event = json_format.Parse(sys.stdin.read(), event_pb2.ExternalGraderScoreSubmitted())
        print(event.SerializeToString().hex())
    elif mode == "event-type":
        options = event_pb2.ExternalGraderScoreSubmitted.DESCRIPTOR.GetOptions()
        print(options.Extensions[options_pb2.event_type])
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
