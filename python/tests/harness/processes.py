"""Child processes with their output in a file, stopped gracefully first."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

#: The repository root (python/tests/harness/ -> ../../..).
REPO_ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ChildProcess:
    """A started process whose stdout and stderr go to `log_path`."""

    def __init__(
        self,
        args: list[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path = REPO_ROOT,
    ) -> None:
        self.args = args
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in _closed()
        self.process = subprocess.Popen(
            args,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def is_running(self) -> bool:
        return self.process.poll() is None

    def output(self, last_lines: int = 80) -> str:
        """The end of its output, for failure messages."""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-last_lines:])

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, then waits; a process that outlives `timeout_s` is killed and the test
        fails, so a hanging shutdown never passes."""
        if self.is_running():
            self.process.send_signal(signal.SIGTERM)
            try:
                return self._closed(self.process.wait(timeout=timeout_s))
            except subprocess.TimeoutExpired:
                self.process.kill()
                self._closed(self.process.wait())
                raise AssertionError(
                    f"{self.args[:3]} did not stop within {timeout_s} s:\n{self.output()}"
                ) from None
        return self._closed(self.process.returncode)

    def kill9(self) -> int:
        """SIGKILL, like a crash: nothing flushed, no shutdown code runs."""
        if self.is_running():
            os.kill(self.process.pid, signal.SIGKILL)
        return self._closed(self.process.wait())

    def _closed(self, code: int) -> int:
        self._log.close()
        return code
