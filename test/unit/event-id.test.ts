import { describe, expect, it } from "vitest";
import { newEventId } from "../../src/contract/index.js";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("newEventId", () => {
  it("is a version 7 UUID that starts with the time in milliseconds", () => {
    const nowMs = Date.UTC(2026, 10, 27, 10, 30, 0, 123);
    const id = newEventId(nowMs);
    expect(id).toMatch(UUID_V7);
    expect(Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16)).toBe(nowMs);
  });

  it("sorts ids of later milliseconds after earlier ones, whatever their random part", () => {
    const ids = Array.from({ length: 200 }, (_, i) => newEventId(1_700_000_000_000 + i));
    expect([...ids].sort()).toEqual(ids);
  });

  it("differs between ids of the same millisecond", () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newEventId(1_700_000_000_000)));
    expect(ids.size).toBe(1000);
  });
});
