import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/cli/config-values.js";
import { parseServeConfig, type ServeFlags } from "../../src/cli/serve-command.js";

const defaults: ServeFlags = {
  listen: "127.0.0.1:50051",
  natsUrl: "nats://127.0.0.1:4222",
  dataDir: "/var/lib/gradecast",
  stream: "GRADECAST_SCORES",
  subjectPrefix: "gradecast",
  source: "openedx/gradecast/grpc",
  sourcehost: "host-1",
  duplicateWindow: "10m",
  maxAge: "30d",
  maxBytes: "-1",
  replicas: "1",
  publishTimeout: "5s",
  publishWait: "1s",
  commitMaxBatch: "512",
  relayBatch: "256",
  relayMaxBackoff: "10s",
  maxMessageBytes: "1048576",
  shutdownTimeout: "10s",
  reflection: "true",
  metricsListen: "127.0.0.1:9464",
  logLevel: "info",
};

describe("serve configuration", () => {
  it("turns the defaults into a typed config", () => {
    const config = parseServeConfig(defaults);
    expect(config.storePath).toBe("/var/lib/gradecast/gradecast.sqlite");
    expect(config.stream).toMatchObject({
      name: "GRADECAST_SCORES",
      deadLetterName: "GRADECAST_SCORES_DLQ",
      subjectPrefix: "gradecast",
      duplicateWindowMs: 600_000,
      maxAgeMs: 30 * 86_400_000,
      maxBytes: -1,
      replicas: 1,
    });
    expect(config.publish).toEqual({ timeoutMs: 5_000, waitMs: 1_000 });
    expect(config.events.sourcelib).toMatch(/^\d+\.\d+\.\d+/);
    expect(config.reflection).toBe(true);
    expect(config.metricsListen).toBe("127.0.0.1:9464");
  });

  it.each<[Partial<ServeFlags>, Partial<ReturnType<typeof parseServeConfig>>]>([
    [{ reflection: false }, { reflection: false }],
    [{ reflection: "false" }, { reflection: false }],
    [{ reflection: "TRUE" }, { reflection: true }],
    [{ metricsListen: "off" }, { metricsListen: undefined }],
    [{ metricsListen: "0.0.0.0:9100" }, { metricsListen: "0.0.0.0:9100" }],
  ])("reads %j as %j", (override, expected) => {
    expect(parseServeConfig({ ...defaults, ...override })).toMatchObject(expected);
  });

  it.each<[Partial<ServeFlags>, string, RegExp]>([
    [{ listen: "localhost" }, "--listen", /host:port/],
    [{ listen: "h:70000" }, "--listen", /host:port/],
    [{ natsUrl: "http://x:4222" }, "--nats-url", /nats:\/\//],
    [{ natsUrl: "not a url" }, "--nats-url", /not a URL/],
    [{ subjectPrefix: "a.*" }, "--subject-prefix", /wildcards/],
    [{ stream: "bad.name" }, "--stream", /stream name/],
    [{ deadLetterStream: "GRADECAST_SCORES" }, "--dead-letter-stream", /must differ/],
    [{ duplicateWindow: "10x" }, "--duplicate-window", /not a duration/],
    [{ duplicateWindow: "20s" }, "--duplicate-window", /at least/],
    [{ maxBytes: "lots" }, "--max-bytes", /whole number/],
    [{ replicas: "0" }, "--replicas", /from 1 to 5/],
    [{ commitMaxBatch: "0" }, "--commit-max-batch", /from 1/],
    [{ logLevel: "loud" }, "--log-level", /not one of/],
    [{ metricsListen: "9464" }, "--metrics-listen", /host:port/],
    [{ reflection: "yes" }, "GRADECAST_REFLECTION", /true or false/],
  ])("refuses %j, naming %s", (override, setting, message) => {
    let caught: unknown;
    try {
      parseServeConfig({ ...defaults, ...override });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).setting).toBe(setting);
    expect((caught as ConfigError).message).toMatch(message);
  });
});
