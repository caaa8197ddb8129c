import { rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, parseDurationMs } from "../../src/cli/config-values.js";
import { parseServeConfig, type ServeFlags } from "../../src/cli/serve-command.js";
import { parseLogLevel } from "../../src/cli/serve-logger.js";

const defaults: ServeFlags = {
  listen: "127.0.0.1:50051",
  insecureNoAuth: true,
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
  pgPoolSize: "10",
  relayBatch: "256",
  relayMaxBackoff: "10s",
  outboxRetention: "24h",
  maxMessageBytes: "1048576",
  maxConcurrentStreams: "100",
  maxSessionMemoryMb: "10",
  requestArrivalTimeout: "10s",
  maxConnectionAge: "30m",
  maxConnectionAgeGrace: "30s",
  maxConnectionIdle: "5m",
  keepaliveTime: "1m",
  keepaliveTimeout: "20s",
  shutdownTimeout: "10s",
  reflection: "true",
  metricsListen: "127.0.0.1:9464",
  logLevel: "info",
};

describe("serve configuration", () => {
  it.each(["0.0.0.0:50051", "[::]:50051", "10.1.2.3:50051", "grader-host:50051"])(
    "refuses --insecure-no-auth on %s, a network address, without --insecure-no-auth-on-network",
    (listen) => {
      expect(() => parseServeConfig({ ...defaults, listen })).toThrow(
        /--insecure-no-auth: would let anyone who reaches .* submit scores/,
      );
      expect(parseServeConfig({ ...defaults, listen, insecureNoAuthOnNetwork: true }).listen).toBe(
        listen,
      );
    },
  );

  it.each(["127.0.0.1:50051", "127.0.0.2:0", "localhost:50051", "[::1]:50051"])(
    "allows --insecure-no-auth on %s, a loopback address",
    (listen) => {
      expect(parseServeConfig({ ...defaults, listen }).auth).toEqual({ kind: "none" });
    },
  );

  it("turns the defaults into a typed config", () => {
    const config = parseServeConfig(defaults);
    expect(config.store).toEqual({ kind: "sqlite", path: "/var/lib/gradecast/gradecast.sqlite" });
    expect(config.commit).toEqual({ maxBatch: 512, maxBatchesInFlight: 2 });
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
    [{ store: "./x.sqlite" }, { store: { kind: "sqlite", path: join(process.cwd(), "x.sqlite") } }],
    [
      { store: "postgres://gradecast@db.internal:5432/grades", pgPoolSize: "20" },
      {
        store: {
          kind: "postgres",
          url: "postgres://gradecast@db.internal:5432/grades",
          poolSize: 20,
        },
        commit: { maxBatch: 512, maxBatchesInFlight: 4 },
      },
    ],
    [
      { store: "postgresql://db/grades", commitBatchesInFlight: "8" },
      { commit: { maxBatch: 512, maxBatchesInFlight: 8 } },
    ],
  ])("reads %j as %j", (override, expected) => {
    expect(parseServeConfig({ ...defaults, ...override })).toMatchObject(expected);
  });

  it.each<[string, boolean]>([
    ["true", true],
    ["1", true],
    ["yes", true],
    ["on", true],
    [" YES ", true],
    ["On", true],
    ["false", false],
    ["0", false],
    ["no", false],
    ["off", false],
    ["FALSE", false],
  ])("reads the boolean setting %j as %s", (text, expected) => {
    expect(parseServeConfig({ ...defaults, reflection: text }).reflection).toBe(expected);
    const onNetwork = { ...defaults, listen: "0.0.0.0:50051", insecureNoAuthOnNetwork: text };
    if (expected) expect(parseServeConfig(onNetwork).listen).toBe("0.0.0.0:50051");
    else expect(() => parseServeConfig(onNetwork)).toThrow(/--insecure-no-auth: would let/);
  });

  it.each([
    ["warning", "warn"],
    ["WARN", "warn"],
    ["Info", "info"],
    ["silent", "silent"],
  ])("understands --log-level %j as %s", (text, level) => {
    expect(() => parseServeConfig({ ...defaults, logLevel: text })).not.toThrow();
    expect(parseLogLevel(text)).toBe(level);
  });

  it.each([
    ["500ms", 500],
    ["30s", 30_000],
    ["2m", 120_000],
    ["1h30m", 5_400_000],
    ["30d", 30 * 86_400_000],
    ["250", 250],
    ["0", 0],
  ])("reads the duration %j as %i ms", (text, expectedMs) => {
    expect(parseDurationMs("--max-age", text)).toBe(expectedMs);
    expect(parseServeConfig({ ...defaults, maxAge: text }).stream.maxAgeMs).toBe(expectedMs);
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
    [
      { reflection: "maybe" },
      "GRADECAST_REFLECTION",
      /"maybe" is not a boolean: use true\/false, 1\/0, yes\/no or on\/off/,
    ],
    [{ insecureNoAuth: "y" }, "--insecure-no-auth", /use true\/false, 1\/0, yes\/no or on\/off/],
    [{ logLevel: "verbose" }, "--log-level", /fatal, error, warn, info, debug, trace, silent/],
    [{ publishTimeout: "-1s" }, "--publish-timeout", /not a duration/],
    [{ store: "postgres://" }, "--store", /must name a host/],
    [{ store: "postgres://db/x", pgPoolSize: "0" }, "--pg-pool-size", /from 1/],
    [{ commitBatchesInFlight: "many" }, "--commit-batches-in-flight", /whole number/],
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

describe("outbox retention", () => {
  it("prunes published outbox rows after 24 h by default, a round a minute, in bounded batches", () => {
    expect(parseServeConfig(defaults).outboxPruning).toEqual({
      retentionMs: 86_400_000,
      intervalMs: 60_000,
      batchSize: 256,
    });
  });

  it.each<[string, number, number]>([
    ["30m", 1_800_000, 60_000],
    ["1m", 60_000, 6_000],
    ["2s", 2_000, 1_000],
  ])(
    "reads --outbox-retention %s as %i ms, pruned every %i ms",
    (value, retentionMs, intervalMs) => {
      expect(parseServeConfig({ ...defaults, outboxRetention: value }).outboxPruning).toMatchObject(
        {
          retentionMs,
          intervalMs,
        },
      );
    },
  );

  it("keeps published outbox rows forever with --outbox-retention 0", () => {
    expect(parseServeConfig({ ...defaults, outboxRetention: "0" }).outboxPruning).toBeUndefined();
  });

  it.each(["-1h", "a day", ""])("refuses --outbox-retention %j, naming the setting", (value) => {
    expect(() => parseServeConfig({ ...defaults, outboxRetention: value })).toThrow(
      /^invalid --outbox-retention: .* is not a duration/,
    );
  });
});

describe("TLS and NATS credential settings", () => {
  // A file that exists but holds no PEM.
  const notPem = join(import.meta.dirname, "..", "..", "package.json");
  const missing = "/nonexistent/gradecast/cert.pem";
  const credsPath = join(tmpdir(), `gradecast-unit-${process.pid}.creds`);
  beforeAll(() =>
    writeFileSync(credsPath, "-----BEGIN NATS USER JWT-----\nx\n------END NATS USER JWT------\n"),
  );
  afterAll(() => rmSync(credsPath, { force: true }));

  it.each<[string, boolean]>([
    ["true", true],
    ["1", true],
    ["yes", true],
    ["on", true],
    [" YES ", true],
    ["On", true],
    ["false", false],
    ["0", false],
    ["no", false],
    ["off", false],
    ["FALSE", false],
  ])("reads the boolean setting %j as %s", (text, expected) => {
    expect(parseServeConfig({ ...defaults, reflection: text }).reflection).toBe(expected);
    const onNetwork = { ...defaults, listen: "0.0.0.0:50051", insecureNoAuthOnNetwork: text };
    if (expected) expect(parseServeConfig(onNetwork).listen).toBe("0.0.0.0:50051");
    else expect(() => parseServeConfig(onNetwork)).toThrow(/--insecure-no-auth: would let/);
  });

  it.each([
    ["warning", "warn"],
    ["WARN", "warn"],
    ["Info", "info"],
    ["silent", "silent"],
  ])("understands --log-level %j as %s", (text, level) => {
    expect(() => parseServeConfig({ ...defaults, logLevel: text })).not.toThrow();
    expect(parseLogLevel(text)).toBe(level);
  });

  it.each([
    ["500ms", 500],
    ["30s", 30_000],
    ["2m", 120_000],
    ["1h30m", 5_400_000],
    ["30d", 30 * 86_400_000],
    ["250", 250],
    ["0", 0],
  ])("reads the duration %j as %i ms", (text, expectedMs) => {
    expect(parseDurationMs("--max-age", text)).toBe(expectedMs);
    expect(parseServeConfig({ ...defaults, maxAge: text }).stream.maxAgeMs).toBe(expectedMs);
  });

  it.each<[Partial<ServeFlags>, string, RegExp]>([
    [{ tlsCert: notPem }, "--tls-key", /required with --tls-cert/],
    [{ tlsKey: notPem }, "--tls-cert", /required with --tls-key/],
    [{ tlsClientCa: notPem }, "--tls-client-ca", /needs --tls-cert and --tls-key/],
    [{ tlsCert: missing, tlsKey: missing }, "--tls-cert", /cannot read .*ENOENT/],
    [{ tlsCert: notPem, tlsKey: notPem }, "--tls-cert", /not a PEM certificate/],
    [{ natsUser: "u", natsPassword: "p", natsToken: "t" }, "--nats-token", /only one NATS/],
    [{ natsToken: "t", natsCreds: credsPath }, "--nats-creds", /only one NATS/],
    [{ natsUser: "u" }, "--nats-password", /required with --nats-user/],
    [{ natsCreds: missing }, "--nats-creds", /cannot read/],
    [{ natsCreds: notPem }, "--nats-creds", /not a .creds file/],
    [{ natsCa: notPem }, "--nats-ca", /not a PEM certificate/],
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

  it("reads NATS credentials into one auth mode and never into the message of an error", () => {
    expect(parseServeConfig({ ...defaults, natsUser: "u", natsPassword: "p" }).nats.auth).toEqual({
      kind: "user-password",
      user: "u",
      password: "p",
    });
    expect(parseServeConfig({ ...defaults, natsToken: "t0k3n" }).nats.auth).toEqual({
      kind: "token",
      token: "t0k3n",
    });
    expect(parseServeConfig({ ...defaults, natsCreds: credsPath }).nats.auth?.kind).toBe("creds");
    let message = "";
    try {
      parseServeConfig({ ...defaults, natsToken: "t0k3n", natsPassword: "hunter2" });
    } catch (error) {
      message = String(error);
    }
    expect(message).toMatch(/only one NATS credential/);
    expect(message).not.toMatch(/t0k3n|hunter2/);
  });
});

describe("grader authentication settings", () => {
  const { insecureNoAuth: _, ...withoutAuth } = defaults;
  const credentialsPath = join(tmpdir(), `gradecast-unit-${process.pid}.credentials.json`);
  beforeAll(() => writeFileSync(credentialsPath, JSON.stringify({ graders: {} })));
  afterAll(() => rmSync(credentialsPath, { force: true }));

  it("refuses to serve with neither --credentials nor --insecure-no-auth, naming --credentials", () => {
    const parsing = () => parseServeConfig(withoutAuth);
    expect(parsing).toThrow(ConfigError);
    expect(parsing).toThrow(
      "invalid --credentials: graders must authenticate: set --credentials or, for local development, --insecure-no-auth",
    );
  });

  it.each<[string, boolean]>([
    ["true", true],
    ["1", true],
    ["yes", true],
    ["on", true],
    [" YES ", true],
    ["On", true],
    ["false", false],
    ["0", false],
    ["no", false],
    ["off", false],
    ["FALSE", false],
  ])("reads the boolean setting %j as %s", (text, expected) => {
    expect(parseServeConfig({ ...defaults, reflection: text }).reflection).toBe(expected);
    const onNetwork = { ...defaults, listen: "0.0.0.0:50051", insecureNoAuthOnNetwork: text };
    if (expected) expect(parseServeConfig(onNetwork).listen).toBe("0.0.0.0:50051");
    else expect(() => parseServeConfig(onNetwork)).toThrow(/--insecure-no-auth: would let/);
  });

  it.each([
    ["warning", "warn"],
    ["WARN", "warn"],
    ["Info", "info"],
    ["silent", "silent"],
  ])("understands --log-level %j as %s", (text, level) => {
    expect(() => parseServeConfig({ ...defaults, logLevel: text })).not.toThrow();
    expect(parseLogLevel(text)).toBe(level);
  });

  it.each([
    ["500ms", 500],
    ["30s", 30_000],
    ["2m", 120_000],
    ["1h30m", 5_400_000],
    ["30d", 30 * 86_400_000],
    ["250", 250],
    ["0", 0],
  ])("reads the duration %j as %i ms", (text, expectedMs) => {
    expect(parseDurationMs("--max-age", text)).toBe(expectedMs);
    expect(parseServeConfig({ ...defaults, maxAge: text }).stream.maxAgeMs).toBe(expectedMs);
  });

  it.each<[Partial<ServeFlags>, string, RegExp]>([
    [{ insecureNoAuth: "false" }, "--credentials", /set --credentials/],
    [{ insecureNoAuth: "maybe" }, "--insecure-no-auth", /is not a boolean/],
    [{ credentials: "/nonexistent/credentials.json" }, "--credentials", /cannot be read/],
    [
      { credentials: join(import.meta.dirname, "..", "..", "package.json") },
      "--credentials",
      /"graders" object/,
    ],
  ])("refuses %j, naming %s", (override, setting, message) => {
    let caught: unknown;
    try {
      parseServeConfig({ ...withoutAuth, ...override });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).setting).toBe(setting);
    expect((caught as ConfigError).message).toMatch(message);
  });

  it("refuses --credentials together with --insecure-no-auth", () => {
    expect(() => parseServeConfig({ ...defaults, credentials: credentialsPath })).toThrow(
      "invalid --insecure-no-auth: cannot be combined with --credentials",
    );
  });

  it.each<[Partial<ServeFlags>, ReturnType<typeof parseServeConfig>["auth"]]>([
    [{ insecureNoAuth: true }, { kind: "none" }],
    [{ insecureNoAuth: "TRUE" }, { kind: "none" }],
    [{ credentials: credentialsPath }, { kind: "tokens", credentialsPath }],
  ])("reads %j as auth %j", (override, auth) => {
    expect(parseServeConfig({ ...withoutAuth, ...override }).auth).toEqual(auth);
  });
});

describe("HTTP/2 limits", () => {
  it("reads the defaults: 100 streams and 10 MB per connection, 10 s to arrive, 30 min age, 5 min idle, 1 min keepalive", () => {
    expect(parseServeConfig(defaults).transport).toEqual({
      maxConcurrentStreams: 100,
      maxSessionMemoryMb: 10,
      requestArrivalTimeoutMs: 10_000,
      maxConnectionAgeMs: 1_800_000,
      maxConnectionAgeGraceMs: 30_000,
      maxConnectionIdleMs: 300_000,
      keepaliveTimeMs: 60_000,
      keepaliveTimeoutMs: 20_000,
    });
  });

  it("reads 0 as off for the arrival timeout, connection age and idle, and keepalive", () => {
    expect(
      parseServeConfig({
        ...defaults,
        requestArrivalTimeout: "0",
        maxConnectionAge: "0",
        maxConnectionIdle: "0s",
        keepaliveTime: "0",
      }).transport,
    ).toMatchObject({
      requestArrivalTimeoutMs: 0,
      maxConnectionAgeMs: 0,
      maxConnectionIdleMs: 0,
      keepaliveTimeMs: 0,
    });
  });

  it.each<[string, boolean]>([
    ["true", true],
    ["1", true],
    ["yes", true],
    ["on", true],
    [" YES ", true],
    ["On", true],
    ["false", false],
    ["0", false],
    ["no", false],
    ["off", false],
    ["FALSE", false],
  ])("reads the boolean setting %j as %s", (text, expected) => {
    expect(parseServeConfig({ ...defaults, reflection: text }).reflection).toBe(expected);
    const onNetwork = { ...defaults, listen: "0.0.0.0:50051", insecureNoAuthOnNetwork: text };
    if (expected) expect(parseServeConfig(onNetwork).listen).toBe("0.0.0.0:50051");
    else expect(() => parseServeConfig(onNetwork)).toThrow(/--insecure-no-auth: would let/);
  });

  it.each([
    ["warning", "warn"],
    ["WARN", "warn"],
    ["Info", "info"],
    ["silent", "silent"],
  ])("understands --log-level %j as %s", (text, level) => {
    expect(() => parseServeConfig({ ...defaults, logLevel: text })).not.toThrow();
    expect(parseLogLevel(text)).toBe(level);
  });

  it.each([
    ["500ms", 500],
    ["30s", 30_000],
    ["2m", 120_000],
    ["1h30m", 5_400_000],
    ["30d", 30 * 86_400_000],
    ["250", 250],
    ["0", 0],
  ])("reads the duration %j as %i ms", (text, expectedMs) => {
    expect(parseDurationMs("--max-age", text)).toBe(expectedMs);
    expect(parseServeConfig({ ...defaults, maxAge: text }).stream.maxAgeMs).toBe(expectedMs);
  });

  it.each<[Partial<ServeFlags>, string, RegExp]>([
    [{ maxConcurrentStreams: "0" }, "--max-concurrent-streams", /from 1 to 100000/],
    [{ maxConcurrentStreams: "lots" }, "--max-concurrent-streams", /whole number/],
    [{ maxSessionMemoryMb: "0" }, "--max-session-memory-mb", /from 1 to 4096/],
    [{ requestArrivalTimeout: "soon" }, "--request-arrival-timeout", /not a duration/],
    // Past ~24.8 days a Node timer fires at once: the connection would be closed at once.
    [{ maxConnectionAge: "30d" }, "--max-connection-age", /from 0 to 24d/],
    [{ maxConnectionAgeGrace: "-1s" }, "--max-connection-age-grace", /not a duration/],
    [{ maxConnectionIdle: "25d" }, "--max-connection-idle", /to 24d/],
    [{ keepaliveTime: "a minute" }, "--keepalive-time", /not a duration/],
    [{ keepaliveTimeout: "0" }, "--keepalive-timeout", /from 1ms to 24d/],
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
