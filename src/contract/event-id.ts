import { randomUUID } from "node:crypto";

/**
 * A new event id: a UUID version 7 (RFC 9562), the Unix time in milliseconds
 * followed by 74 random bits. Ids made later sort later, so the stores' unique
 * indexes on event ids grow at one end: with random (version 4) ids every
 * commit rewrote one index page per score, a third of the bytes SQLite wrote.
 */
export function newEventId(nowMs: number = Date.now()): string {
  // randomUUID draws from a pooled random buffer; a version 4 id already has the
  // RFC 9562 variant bits. Keep its random part, put the time and version 7 in front.
  const random = randomUUID();
  const time = Math.floor(nowMs).toString(16).padStart(12, "0");
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${random.slice(15)}`;
}
