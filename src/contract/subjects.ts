/**
 * NATS subjects of gradecast events. One scheme, documented in event.proto and
 * the README: `<prefix>.scores.v1.<queue token>`, and for events a consumer gave
 * up on, `<prefix>.dlq.v1.<queue token>`. The queue token is the queue name,
 * with the characters NATS gives a meaning to percent-escaped (see
 * {@link queueToken}), so a consumer filters by queue with a plain subject,
 * whatever the course team called its queue (`MITx-42.01x` included).
 */

/** A subject prefix token: plain characters only (the prefix is configuration, not data). */
const PREFIX_TOKEN = /^[A-Za-z0-9_-]+$/;

/**
 * What a queue token escapes: `%` itself (so the mapping reverses), `.` (the token
 * separator), `*` and `>` (wildcards), whitespace (it ends a subject in the protocol)
 * and control characters. Everything else, non-ASCII letters included, stays as it is,
 * so plain names keep the subjects they always had.
 */
const ESCAPED = /[%.*>\s\p{Cc}]/gu;
const ESCAPE_RUN = /(?:%[0-9A-F]{2})+/g;
const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The subject token of a queue name: each escaped character as `%XX` per UTF-8 byte
 * (uppercase hex). `MITx-42.01x` → `MITx-42%2E01x`, `python-grader` unchanged. Distinct
 * names give distinct tokens (`MITx-42.01x` and `MITx-42_01x` never meet).
 */
export function queueToken(queueName: string): string {
  if (queueName === "") throw new Error("a queue name is never empty");
  return queueName.replace(ESCAPED, (char) =>
    [...Buffer.from(char, "utf8")]
      .map((byte) => `%${byte.toString(16).toUpperCase().padStart(2, "0")}`)
      .join(""),
  );
}

/**
 * The queue name of a subject token, or undefined when the token is not one
 * {@link queueToken} writes (an unescaped special character, a bad escape, or
 * not the canonical form), so every queue has exactly one token.
 */
export function queueNameOfToken(token: string): string | undefined {
  if (token === "") return undefined;
  try {
    // Each run of escapes is the UTF-8 of one or more characters.
    const queueName = token.replace(ESCAPE_RUN, (run) =>
      STRICT_UTF8.decode(
        Uint8Array.from(run.slice(1).split("%"), (hex) => Number.parseInt(hex, 16)),
      ),
    );
    return queueToken(queueName) === token ? queueName : undefined;
  } catch {
    return undefined; // escapes that are not UTF-8
  }
}

/** Subject the events of `queueName` are published on: `<prefix>.scores.v1.<queue token>`. */
export function subjectForQueue(prefix: string, queueName: string): string {
  return `${prefix}.scores.v1.${queueToken(queueName)}`;
}

/** Filter for the events of one queue, or of every queue when `queueName` is omitted. */
export function scoreSubjectFilter(prefix: string, queueName?: string): string {
  return queueName === undefined ? `${prefix}.scores.v1.*` : subjectForQueue(prefix, queueName);
}

/** Dead-letter subject of an event of `queueName`. */
export function deadLetterSubject(prefix: string, queueName: string): string {
  return `${prefix}.dlq.v1.${queueToken(queueName)}`;
}

/** Filter for the dead letters of one queue, or of every queue when `queueName` is omitted. */
export function deadLetterSubjectFilter(prefix: string, queueName?: string): string {
  return queueName === undefined ? `${prefix}.dlq.v1.*` : deadLetterSubject(prefix, queueName);
}

/** Queue name of a score subject, or undefined when the subject is not one. */
export function queueNameOfSubject(prefix: string, subject: string): string | undefined {
  const head = `${prefix}.scores.v1.`;
  if (!subject.startsWith(head)) return undefined;
  return queueNameOfToken(subject.slice(head.length));
}

/**
 * The score subject a dead letter published on `deadLetterSubject` may be re-driven to: the
 * same prefix and queue token under `scores.v1`. Undefined when the subject is not a dead-letter
 * subject. A dead letter's headers are data written by whoever dead-lettered it; only the subject
 * the dead-letter stream stored it under (which its subject filter bounds) says where it belongs.
 */
export function scoreSubjectOfDeadLetter(deadLetterSubject: string): string | undefined {
  const marker = ".dlq.v1.";
  const at = deadLetterSubject.lastIndexOf(marker);
  if (at <= 0) return undefined;
  const prefix = deadLetterSubject.slice(0, at);
  const token = deadLetterSubject.slice(at + marker.length);
  if (subjectPrefixProblem(prefix) !== undefined || queueNameOfToken(token) === undefined) {
    return undefined;
  }
  return `${prefix}.scores.v1.${token}`;
}

/** Why a subject prefix is unusable, or undefined when it is fine (dot-separated plain tokens). */
export function subjectPrefixProblem(prefix: string): string | undefined {
  if (prefix === "") return "must not be empty";
  const bad = prefix.split(".").find((token) => !PREFIX_TOKEN.test(token));
  if (bad !== undefined) {
    return `token ${JSON.stringify(bad)} must be 1+ characters of A-Z a-z 0-9 _ - (no wildcards or spaces)`;
  }
  return undefined;
}
