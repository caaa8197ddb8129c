import { setTimeout as delay } from "node:timers/promises";
import { outboxPendingOf } from "./gradecast-probes.js";
import type { GradecastSupervisor } from "./gradecast-supervisor.js";
import type { StreamReader } from "./stream-reader.js";

const POLL_INTERVAL_MS = 200;
const READ_TIMEOUT_MS = 15_000;

/**
 * Reads the stream until it holds every event id answered OK and gradecast has nothing pending
 * (so no late event is still on its way); resolves with the time it got there, or undefined at
 * `timeoutMs` (the verdict then names what is missing).
 */
export async function waitUntilSettled(
  gradecast: GradecastSupervisor,
  reader: StreamReader,
  okEventIds: ReadonlySet<string>,
  timeoutMs: number,
  signal: AbortSignal,
  log: (line: string) => void,
): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  let pending: number | undefined;
  let missing = okEventIds.size;
  let readError: unknown;
  while (!signal.aborted) {
    // A cluster may still be electing a stream leader: a failed read is tried again.
    readError = await reader.readNew(READ_TIMEOUT_MS).then(
      () => undefined,
      (error: unknown) => error,
    );
    const seen = new Set(reader.events.map((event) => event.natsMsgId));
    missing = [...okEventIds].filter((eventId) => !seen.has(eventId)).length;
    pending = await outboxPendingOf(gradecast.metricsPort);
    if (readError === undefined && missing === 0 && pending === 0) return Date.now();
    if (Date.now() >= deadline) break;
    await delay(POLL_INTERVAL_MS);
  }
  log(
    `not settled within ${timeoutMs} ms: ${missing} OK events not in the stream, outbox pending ${pending ?? "unknown"}${readError === undefined ? "" : `, last read failed: ${String(readError)}`}`,
  );
  return undefined;
}
