import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findFreePort, runTsxScript } from "../helpers/child-process.js";
import { startGradecastProcess } from "../helpers/gradecast-process.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";

// Secrets given in URLs must never reach a log line or an error message.
const NATS_SECRET = "n4ts-s3cret";
const PG_SECRET = "pg-s3cret";

let dataDir: string;
let database: TestDatabase;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "gradecast-secrets-"));
  database = await createTestDatabase();
});

afterAll(async () => {
  await database?.drop();
  await rm(dataDir, { recursive: true, force: true });
});

describe("secrets in URLs", () => {
  it("are not logged: a NATS password that cannot connect yet, a PostgreSQL ?password=", async () => {
    // Nothing listens on this port: the link warns that NATS is not reachable, with the URL.
    const natsUrl = `nats://gc:${NATS_SECRET}@127.0.0.1:${await findFreePort()}`;
    const child = await startGradecastProcess({
      natsUrl,
      dataDir,
      stream: "SECRETS",
      extraArgs: ["--log-level", "info", "--store", `${database.url}?password=${PG_SECRET}`],
    });
    try {
      const output = child.output();
      expect(output).toContain("NATS is not reachable yet");
      expect(output).toContain("gc:***@127.0.0.1");
      expect(output).toContain("password=***");
      expect(output).not.toContain(NATS_SECRET);
      expect(output).not.toContain(PG_SECRET);
    } finally {
      await child.stop(30_000);
    }
  });

  it("are not echoed by a configuration error", async () => {
    const run = await runTsxScript(
      "src/cli/run.ts",
      ["serve", "--insecure-no-auth", "--nats-url", `nats://gc:${NATS_SECRET}@bad host:4222`],
      { timeoutMs: 60_000, killSignal: "SIGKILL" },
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("gc:***@bad host");
    expect(run.stderr).not.toContain(NATS_SECRET);
  });
});
