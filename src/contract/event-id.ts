import { randomFillSync } from "node:crypto";

/** Random bytes drawn at once, for this many ids: one `randomFillSync` per 256 ids, not one each. */
const IDS_PER_DRAW = 256;
/** Bytes of randomness an id takes from the pool: 4 to seed the counter, 6 for its tail. */
const RANDOM_BYTES_PER_ID = 10;

const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

let pool = new Uint8Array(0);
let poolOffset = 0;
/** The millisecond of the last id, and the counter within it. */
let lastMs = Number.NEGATIVE_INFINITY;
let counter = 0;

/**
 * A new event id: a UUID version 7 (RFC 9562, method 1 of its section 6.2): the Unix time in
 * milliseconds, then a 32-bit counter that starts at a random value (top bit clear) each
 * millisecond and grows by one per id within it, then random bits. So ids made later in this
 * process sort later, within a millisecond too (a clock set back keeps the last millisecond),
 * and the stores' unique indexes on event ids grow at one end: with random (version 4) ids every
 * commit rewrote one index page per score, a third of the bytes SQLite wrote.
 *
 * The layout is the `uuid` package's `v7()`; this draws its randomness in blocks, where `uuid`
 * made a `getRandomValues` call per id, 3% of the serving thread's time in the closed loop.
 */
export function newEventId(): string {
  if (poolOffset + RANDOM_BYTES_PER_ID > pool.length) {
    pool = randomFillSync(new Uint8Array(IDS_PER_DRAW * RANDOM_BYTES_PER_ID));
    poolOffset = 0;
  }
  const random = pool;
  const at = poolOffset;
  poolOffset += RANDOM_BYTES_PER_ID;

  const nowMs = Date.now();
  if (nowMs > lastMs) {
    lastMs = nowMs;
    counter =
      (((random[at] ?? 0) & 0x7f) << 24) |
      ((random[at + 1] ?? 0) << 16) |
      ((random[at + 2] ?? 0) << 8) |
      (random[at + 3] ?? 0);
  } else {
    counter = (counter + 1) | 0;
    // 2^32 ids in one millisecond: borrow the next one, as `uuid` does.
    if (counter === 0) lastMs += 1;
  }
  const ms = lastMs;
  const bytes = [
    (ms / 0x10000000000) & 0xff,
    (ms / 0x100000000) & 0xff,
    (ms / 0x1000000) & 0xff,
    (ms / 0x10000) & 0xff,
    (ms / 0x100) & 0xff,
    ms & 0xff,
    0x70 | ((counter >>> 28) & 0x0f),
    (counter >>> 20) & 0xff,
    0x80 | ((counter >>> 14) & 0x3f),
    (counter >>> 6) & 0xff,
    ((counter << 2) & 0xff) | ((random[at + 4] ?? 0) & 0x03),
    random[at + 5] ?? 0,
    random[at + 6] ?? 0,
    random[at + 7] ?? 0,
    random[at + 8] ?? 0,
    random[at + 9] ?? 0,
  ].map((byte) => HEX[byte] as string);
  return `${bytes[0]}${bytes[1]}${bytes[2]}${bytes[3]}-${bytes[4]}${bytes[5]}-${bytes[6]}${bytes[7]}-${bytes[8]}${bytes[9]}-${bytes[10]}${bytes[11]}${bytes[12]}${bytes[13]}${bytes[14]}${bytes[15]}`;
}
