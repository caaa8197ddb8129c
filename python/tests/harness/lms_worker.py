"""`python -m django consume_gradecast_scores` in the fake LMS, as an operator runs it."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .processes import REPO_ROOT, ChildProcess
from .waiting import wait_for

TESTS_DIR = Path(__file__).resolve().parents[1]


@dataclass
class WorkerFiles:
    """The files a worker and its receiver share with the test."""

    directory: Path
    calls: Path = field(init=False)
    plan: Path = field(init=False)
    health: Path = field(init=False)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.calls = self.directory / "receiver-calls.jsonl"
        self.plan = self.directory / "receiver-plan.json"
        self.health = self.directory / "worker-health.json"
        self.calls.touch()

    def set_plan(self, plan: dict) -> None:
        partial = self.plan.with_suffix(".tmp")
        partial.write_text(json.dumps(plan), encoding="utf-8")
        os.replace(partial, self.plan)

    def receiver_calls(self, phase: str | None = None) -> list[dict]:
        """Every line the receiver wrote (complete lines only), optionally of one phase."""
        text = self.calls.read_text(encoding="utf-8")
        lines = [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]
        return [line for line in lines if phase is None or line["phase"] == phase]

    def calls_of(self, event_id: str, phase: str) -> list[dict]:
        return [
            line
            for line in self.receiver_calls(phase)
            if (line.get("event_id") or line.get("metadata", {}).get("id")) == event_id
        ]

    def health_status(self) -> dict | None:
        try:
            return json.loads(self.health.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None


class LmsWorker:
    """One worker process; `settings` become its GRADECAST_* Django settings."""

    def __init__(self, files: WorkerFiles, nats_url: str, name: str, **settings: object) -> None:
        self.files = files
        env = {
            **os.environ,
            "PYTHONPATH": str(TESTS_DIR),
            "DJANGO_SETTINGS_MODULE": "fake_lms.settings",
            "GRADECAST_NATS_URL": nats_url,
            "GRADECAST_HEALTH_FILE": str(files.health),
            "GRADEBOOK_CALLS_FILE": str(files.calls),
            "GRADEBOOK_PLAN_FILE": str(files.plan),
            "PYTHONUNBUFFERED": "1",
        }
        for key, value in settings.items():
            env[f"GRADECAST_{key.upper()}"] = value if isinstance(value, str) else json.dumps(value)
        if files.health.exists():
            files.health.unlink()
        self.child = ChildProcess(
            [sys.executable, "-m", "django", "consume_gradecast_scores"],
            files.directory / f"worker-{name}.log",
            env=env,
            cwd=REPO_ROOT,
        )
        wait_for(self._is_running, f"worker {name} to consume", details=self.child.output)

    def _is_running(self) -> bool:
        if not self.child.is_running():
            raise AssertionError(f"the worker exited:\n{self.child.output()}")
        status = self.files.health_status()
        return status is not None and status["state"] == "running"

    def stop(self) -> int:
        return self.child.stop()

    def kill9(self) -> int:
        return self.child.kill9()

    def output(self) -> str:
        return self.child.output()
