"""A real `gradecast serve` (node bin/gradecast.js, built by `npm run build`), with grader
credentials, on a free loopback port; ready once its gRPC health check says SERVING."""

from __future__ import annotations

import subprocess
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .certificates import ServerCertificates
from .processes import REPO_ROOT, ChildProcess, free_port
from .waiting import wait_for

GRADECAST = ["node", str(REPO_ROOT / "bin" / "gradecast.js")]
STREAM = "GRADECAST_SCORES"
DEAD_LETTER_STREAM = f"{STREAM}_DLQ"
SUBJECT_PREFIX = "gradecast"
#: The grader the tests report as, and the queues it may use.
GRADER_NAME = "python-tests"
GRADER_QUEUES = "py-*,py.dotted"


def gradecast_command(*args: str) -> str:
    """Runs a `gradecast` CLI command to completion and returns its stdout."""
    done = subprocess.run(
        [*GRADECAST, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise AssertionError(f"gradecast {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


class GradecastServer:
    """`gradecast serve`; with `certificates`, over TLS (`--tls-cert`, `--tls-key`)."""

    def __init__(
        self,
        work_dir: Path,
        nats_url: str,
        *,
        stream: str = STREAM,
        subject_prefix: str = SUBJECT_PREFIX,
        certificates: ServerCertificates | None = None,
    ) -> None:
        if not (REPO_ROOT / "dist" / "src" / "cli" / "run.js").exists():
            raise RuntimeError(
                "gradecast is not built: run `npm run build` (scripts/python-tests.sh does)"
            )
        self.nats_url = nats_url
        credentials = work_dir / "graders.json"
        self.token = gradecast_command(
            "credentials", "add", GRADER_NAME, "--queues", GRADER_QUEUES,
            "--credentials", str(credentials),
        ).splitlines()[0].strip()  # fmt: skip
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        tls_flags = (
            ["--tls-cert", str(certificates.server_cert), "--tls-key", str(certificates.server_key)]
            if certificates
            else []
        )
        self.child = ChildProcess(
            [
                *GRADECAST,
                "serve",
                "--listen",
                self.address,
                "--credentials",
                str(credentials),
                "--nats-url",
                nats_url,
                "--data-dir",
                str(work_dir / "data"),
                "--stream",
                stream,
                "--subject-prefix",
                subject_prefix,
                "--metrics-listen",
                "127.0.0.1:0",
                *tls_flags,
            ],  # fmt: skip
            work_dir / "gradecast.log",
        )
        self._channel = (
            grpc.secure_channel(
                self.address,
                grpc.ssl_channel_credentials(root_certificates=certificates.ca.read_bytes()),
            )
            if certificates
            else grpc.insecure_channel(self.address)
        )
        wait_for(self._is_serving, "gradecast to report SERVING", details=self.child.output)

    def _is_serving(self) -> bool:
        if not self.child.is_running():
            raise AssertionError(f"gradecast exited:\n{self.child.output()}")
        try:
            reply = health_pb2_grpc.HealthStub(self._channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=1
            )
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def stop(self) -> None:
        self._channel.close()
        code = self.child.stop()
        assert code == 0, f"gradecast exited with {code}:\n{self.child.output()}"
