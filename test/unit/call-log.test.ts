import { Metadata } from "@grpc/grpc-js";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { callLogLevel, logCall, requestIdOf } from "../../src/server/call-log.js";

describe("call log", () => {
  it.each([
    ["OK", "debug"],
    ["NOT_FOUND", "debug"],
    ["INVALID_ARGUMENT", "info"],
    ["FAILED_PRECONDITION", "info"],
    ["UNAUTHENTICATED", "info"],
    ["PERMISSION_DENIED", "info"],
    ["UNAVAILABLE", "warn"],
    ["INTERNAL", "error"],
    ["UNKNOWN", "error"],
  ])("a call answered %s is logged at %s", (code, level) => {
    expect(callLogLevel(code)).toBe(level);
  });

  it("at level info an answered call writes nothing and a refused one writes one line", () => {
    const lines: string[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => lines.push(line) });
    const call = { requestId: "r1", method: "SubmitScore", durationMs: 1.5 };
    logCall(logger, { ...call, code: "OK" });
    expect(lines).toEqual([]);
    logCall(logger, { ...call, code: "PERMISSION_DENIED", reason: "not your queue" });
    expect(lines.map((line) => JSON.parse(line))).toEqual([
      expect.objectContaining({ level: 30, code: "PERMISSION_DENIED", requestId: "r1" }),
    ]);
  });

  it.each<[string, string[], RegExp]>([
    ["keeps a client's id", ["abc-123"], /^abc-123$/],
    ["drops unsafe characters", ['a b"c<>'], /^abc$/],
    ["cuts it to 128 characters", ["y".repeat(500)], /^y{128}$/],
    ["makes one when none is sent", [], /^[0-9a-f-]{36}$/],
    ["makes one when nothing safe is left", ["\"'{} "], /^[0-9a-f-]{36}$/],
  ])("the request id %s", (_, sent, expected) => {
    const metadata = new Metadata();
    for (const value of sent) metadata.add("x-request-id", value);
    expect(requestIdOf(metadata)).toMatch(expected);
  });
});
