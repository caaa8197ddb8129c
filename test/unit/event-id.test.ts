import { afterEach, describe, expect, it, vi } from "vitest";
import { newEventId } from "../../src/contract/index.js";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The 48-bit millisecond timestamp at the front of a version 7 UUID. */
function millisecondsOf(id: string): number {
  return Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}

afterEach(() => {
  vi.useRealTimers();
});

describe("newEventId", () => {
  it("is a version 7 UUID that starts with the time in milliseconds", () => {
    const nowMs = Date.UTC(2026, 10, 27, 10, 30, 0, 123);
    vi.useFakeTimers({ now: nowMs });
    const id = newEventId();
    expect(id).toMatch(UUID_V7);
    expect(millisecondsOf(id)).toBe(nowMs);
  });

  it("sorts ids of later milliseconds after earlier ones, whatever their random part", () => {
    vi.useFakeTimers({ now: 1_900_000_000_000 });
    const ids = Array.from({ length: 200 }, () => {
      vi.advanceTimersByTime(1);
      return newEventId();
    });
    expect(new Set(ids.map(millisecondsOf)).size).toBe(200);
    expect([...ids].sort()).toEqual(ids);
  });

  it("sorts 10,000 ids made in one millisecond in the order they were made, none equal", () => {
    // The clock stands still: every id has the same timestamp, only the counter orders them.
    vi.useFakeTimers({ now: 1_950_000_000_000 });
    const ids = Array.from({ length: 10_000 }, () => newEventId());
    expect(ids.every((id) => UUID_V7.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(10_000);
    expect([...ids].sort()).toEqual(ids);
  });
});

describe("newEventId with a clock set back", () => {
  it("keeps sorting after the ids made before, none equal", () => {
    vi.useFakeTimers({ now: 1_960_000_000_000 });
    const before = Array.from({ length: 300 }, () => newEventId());
    vi.setSystemTime(1_960_000_000_000 - 5_000);
    const after = Array.from({ length: 300 }, () => newEventId());
    const ids = [...before, ...after];
    expect(ids.every((id) => UUID_V7.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(600);
    expect([...ids].sort()).toEqual(ids);
    // The later ids keep the last millisecond rather than the clock's earlier one.
    expect(millisecondsOf(after[299] ?? "")).toBe(1_960_000_000_000);
  });
});
