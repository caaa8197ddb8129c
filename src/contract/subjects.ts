/**
 * NATS subjects of gradecast events. One scheme, documented in event.proto and
 * the README: `<prefix>.scores.v1.<queue_name>`, and for events a consumer
 * gave up on, `<prefix>.dlq.v1.<queue_name>`. The queue name is the last token
 * so a consumer filters by queue with a plain subject, and the contract only
 * admits queue names that are valid single tokens (no `.`, `*`, `>`).
 */

const TOKEN = /^[A-Za-z0-9_-]+$/;

/** Subject an event of `queueName` is published on. */
export function scoreSubject(prefix: string, queueName: string): string {
  if (!TOKEN.test(queueName)) {
    throw new Error(`queue name ${JSON.stringify(queueName)} is not a NATS subject token`);
  }
  return `${prefix}.scores.v1.${queueName}`;
}

/** Filter for the events of one queue, or of every queue when `queueName` is omitted. */
export function scoreSubjectFilter(prefix: string, queueName?: string): string {
  return queueName === undefined ? `${prefix}.scores.v1.*` : scoreSubject(prefix, queueName);
}

/** Dead-letter subject of an event of `queueName`. */
export function deadLetterSubject(prefix: string, queueName: string): string {
  if (!TOKEN.test(queueName)) {
    throw new Error(`queue name ${JSON.stringify(queueName)} is not a NATS subject token`);
  }
  return `${prefix}.dlq.v1.${queueName}`;
}

/** Filter for the dead letters of one queue, or of every queue when `queueName` is omitted. */
export function deadLetterSubjectFilter(prefix: string, queueName?: string): string {
  return queueName === undefined ? `${prefix}.dlq.v1.*` : deadLetterSubject(prefix, queueName);
}

/** Queue name of a score subject, or undefined when the subject is not one. */
export function queueNameOfSubject(prefix: string, subject: string): string | undefined {
  const head = `${prefix}.scores.v1.`;
  if (!subject.startsWith(head)) return undefined;
  const queueName = subject.slice(head.length);
  return TOKEN.test(queueName) ? queueName : undefined;
}

/** Why a subject prefix is unusable, or undefined when it is fine (dot-separated plain tokens). */
export function subjectPrefixProblem(prefix: string): string | undefined {
  if (prefix === "") return "must not be empty";
  const bad = prefix.split(".").find((token) => !TOKEN.test(token));
  if (bad !== undefined) {
    return `token ${JSON.stringify(bad)} must be 1+ characters of A-Z a-z 0-9 _ - (no wildcards or spaces)`;
  }
  return undefined;
}
