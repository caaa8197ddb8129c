"""google.rpc.Status and google.rpc.BadRequest from the vendored proto/google/rpc, for the
interop scripts beside this file.

gen/python has no google.rpc modules: Python code imports the real ones from
googleapis-common-protos, which Debian's /usr/bin/python3 does not have. So the scripts build
the vendored definitions with buf and load them into a private descriptor pool, where they
never shadow or clash with an installed google.rpc package. Run from the repo root.
"""
import subprocess

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

BUF = "node_modules/.bin/buf"


def _message_classes():
    image = subprocess.run(
        [BUF, "build", "--path", "proto/google/rpc", "-o", "-#format=binpb"],
        check=True,
        capture_output=True,
    ).stdout
    pool = descriptor_pool.DescriptorPool()
    for file in descriptor_pb2.FileDescriptorSet.FromString(image).file:
        pool.Add(file)
    factory = message_factory.MessageFactory(pool)
    return tuple(
        factory.GetPrototype(pool.FindMessageTypeByName(name))
        for name in ("google.rpc.Status", "google.rpc.BadRequest")
    )


Status, BadRequest = _message_classes()
