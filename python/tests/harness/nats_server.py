"""A real nats-server with JetStream on a free loopback port and a temp store."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from .processes import ChildProcess, free_port
from .waiting import wait_for

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


class NatsServer:
    def __init__(self, work_dir: Path) -> None:
        if not Path(NATS_SERVER).exists():
            raise RuntimeError(
                f"nats-server not found at {NATS_SERVER}: run scripts/install.sh (Debian's nats-server)"
            )
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        store = work_dir / "jetstream"
        store.mkdir(parents=True)
        self.child = ChildProcess(
            [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(store)],
            work_dir / "nats-server.log",
        )
        wait_for(self._is_ready, "nats-server to accept connections", details=self.child.output)

    def _is_ready(self) -> bool:
        if not self.child.is_running():
            raise AssertionError(f"nats-server exited:\n{self.child.output()}")
        if "Server is ready" not in self.child.output(last_lines=200):
            return False
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        self.child.stop()
