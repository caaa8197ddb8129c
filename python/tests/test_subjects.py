"""The Python queue-token mapping gives every queue the subject the server gives it."""

import json
import subprocess

import pytest

from gradecast_openedx.subjects import (
    queue_name_of_subject,
    queue_name_of_token,
    queue_token,
    score_subject,
)
from harness.processes import REPO_ROOT

QUEUE_NAMES = [
    "python-grader",
    "MITx-42.01x",
    "MITx-42_01x",
    "grader*",
    "a>b",
    "python grader",
    "100%",
    "北大-计算机.101",
    "tab\there",
    "nbsp\u00a0ideographic\u3000bom\ufeffline\u2028sep",
    "c1\u0085control\u009f",
    "%2E",
    "é.ü",
]


def server_tokens(names: list[str]) -> list[str]:
    """queueToken of each name, from the server's own compiled code (dist/)."""
    script = (
        "import { queueToken } from './dist/src/contract/subjects.js';"
        "let input = ''; process.stdin.on('data', (d) => (input += d));"
        "process.stdin.on('end', () => console.log(JSON.stringify(JSON.parse(input).map(queueToken))));"
    )
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        input=json.dumps(names),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=True,
        timeout=60,
    )
    return json.loads(done.stdout)


def test_queue_tokens_are_the_servers_byte_for_byte():
    assert [queue_token(name) for name in QUEUE_NAMES] == server_tokens(QUEUE_NAMES)


@pytest.mark.parametrize("name", QUEUE_NAMES)
def test_a_token_reads_back_as_its_queue_name(name):
    assert queue_name_of_token(queue_token(name)) == name
    assert queue_name_of_subject("gradecast", score_subject("gradecast", name)) == name


@pytest.mark.parametrize(
    "token",
    ["", "a.b", "a*", "a b", "%2e", "%2", "%FF", "%41", "x%"],
)
def test_a_token_no_queue_has_reads_as_none(token):
    # Unescaped specials, lowercase or truncated escapes, bytes that are not UTF-8, and
    # escapes of characters that need none: every queue has exactly one token.
    assert queue_name_of_token(token) is None
