import { describe, expect, it } from "vitest";
import {
  cloudEventHeaders,
  decodeHeaderValue,
  encodeHeaderValue,
} from "../../src/contract/index.js";
import { sampleEvent, sampleMetadata } from "../helpers/contract-fixtures.js";

describe("CloudEvents binary-mode headers", () => {
  it("carry every attribute in a fixed order, with Nats-Msg-Id = ce-id", () => {
    const headers = cloudEventHeaders(sampleEvent());
    expect(headers.map(([name]) => name)).toEqual([
      "ce-specversion",
      "ce-id",
      "ce-type",
      "ce-source",
      "ce-time",
      "ce-datacontenttype",
      "ce-dataschema",
      "ce-minorversion",
      "ce-sourcehost",
      "ce-sourcelib",
      "ce-queuename",
      "content-type",
      "Nats-Msg-Id",
    ]);
    const byName = Object.fromEntries(headers);
    expect(byName["ce-time"]).toBe("2026-11-26T16:00:00.123Z");
    expect(byName["Nats-Msg-Id"]).toBe(byName["ce-id"]);
    expect(byName["ce-minorversion"]).toBe("1");
  });

  it("percent-encode a source with spaces and non-ASCII characters", () => {
    const event = { ...sampleEvent(), metadata: sampleMetadata({ sourcehost: "grader gw é" }) };
    const byName = Object.fromEntries(cloudEventHeaders(event));
    expect(byName["ce-sourcehost"]).toBe("grader%20gw%20%C3%A9");
    expect(decodeHeaderValue(byName["ce-sourcehost"] ?? "")).toBe("grader gw é");
  });

  it("carry the exact queue name, percent-encoded like every value", () => {
    const event = sampleEvent();
    const named = { ...event, scoreData: { ...event.scoreData, queueName: "MITx-42.01x 北大" } };
    const byName = Object.fromEntries(cloudEventHeaders(named as typeof event));
    expect(byName["ce-queuename"]).toBe("MITx-42.01x%20%E5%8C%97%E5%A4%A7");
    expect(decodeHeaderValue(byName["ce-queuename"] ?? "")).toBe("MITx-42.01x 北大");
  });

  it("refuse an event without a time", () => {
    const event = { ...sampleEvent(), metadata: sampleMetadata({ time: undefined }) };
    expect(() => cloudEventHeaders(event)).toThrow(/time/);
  });
});

describe("header value encoding", () => {
  it.each([
    ["plain-ascii_1.0", "plain-ascii_1.0"],
    ["a b", "a%20b"],
    ['say "hi"', "say%20%22hi%22"],
    ["100%", "100%25"],
    ["tab\there", "tab%09here"],
    ["✓", "%E2%9C%93"],
  ])("%j encodes as %j and decodes back", (raw, encoded) => {
    expect(encodeHeaderValue(raw)).toBe(encoded);
    expect(decodeHeaderValue(encoded)).toBe(raw);
  });
});
