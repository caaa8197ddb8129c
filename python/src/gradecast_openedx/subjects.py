"""NATS subjects of gradecast events, the same scheme as the server's src/contract/subjects.ts:
`<prefix>.scores.v1.<queue token>` for events and `<prefix>.dlq.v1.<queue token>` for dead
letters. The queue token is the queue name with `%`, `.`, `*`, `>`, whitespace and control
characters percent-escaped per UTF-8 byte (uppercase hex), so any queue name is one token:
`MITx-42.01x` -> `MITx-42%2E01x`, `python-grader` unchanged.
"""

from __future__ import annotations

import re

# What JavaScript's /[%.*>\s\p{Cc}]/u matches, spelt out: Python's \s is not the same set
# (it lacks U+FEFF), and a different set would give a queue another subject than the server's.
_ESCAPED = re.compile(
    "[%.*>\x00-\x20\x7f-\x9f\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
)
_ESCAPE_RUN = re.compile(r"(?:%[0-9A-F]{2})+")
_PREFIX_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")

#: Queue token of dead letters whose queue cannot be read from their subject.
UNROUTABLE_QUEUE_NAME = "_unroutable"


def queue_token(queue_name: str) -> str:
    """The subject token of a queue name (see the module's doc)."""
    if queue_name == "":
        raise ValueError("a queue name is never empty")
    return _ESCAPED.sub(
        lambda match: "".join(f"%{byte:02X}" for byte in match.group().encode("utf-8")),
        queue_name,
    )


def queue_name_of_token(token: str) -> str | None:
    """The queue name of a subject token, or None when `queue_token` never writes it (an
    unescaped special character, a bad escape, a non-canonical form)."""
    if token == "":
        return None
    try:
        name = _ESCAPE_RUN.sub(
            lambda match: bytes.fromhex(match.group().replace("%", "")).decode("utf-8"), token
        )
    except UnicodeDecodeError:
        return None
    return name if queue_token(name) == token else None


def score_subject(prefix: str, queue_name: str) -> str:
    """Subject the events of `queue_name` are published on."""
    return f"{prefix}.scores.v1.{queue_token(queue_name)}"


def score_subject_filter(prefix: str, queue_name: str | None = None) -> str:
    """Filter for the events of one queue, or of every queue when `queue_name` is None."""
    return f"{prefix}.scores.v1.*" if queue_name is None else score_subject(prefix, queue_name)


def dead_letter_subject(prefix: str, queue_name: str) -> str:
    """Dead-letter subject of an event of `queue_name`."""
    return f"{prefix}.dlq.v1.{queue_token(queue_name)}"


def queue_name_of_subject(prefix: str, subject: str) -> str | None:
    """Queue name of a score subject, or None when the subject is not one."""
    head = f"{prefix}.scores.v1."
    if not subject.startswith(head):
        return None
    return queue_name_of_token(subject[len(head) :])


def subject_prefix_problem(prefix: str) -> str | None:
    """Why a subject prefix is unusable, or None (dot-separated plain tokens)."""
    if prefix == "":
        return "must not be empty"
    for token in prefix.split("."):
        if not _PREFIX_TOKEN.match(token):
            return (
                f"token {token!r} must be 1+ characters of A-Z a-z 0-9 _ - (no wildcards or spaces)"
            )
    return None
