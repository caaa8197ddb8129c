import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGradecastProcess } from "../helpers/gradecast-process.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";

let nats: NatsServerHandle;
let dataDir: string;

beforeAll(async () => {
  nats = await startNatsServer();
  dataDir = await mkdtemp(join(tmpdir(), "gradecast-insecure-"));
});

afterAll(async () => {
  await nats?.cleanup();
  await rm(dataDir, { recursive: true, force: true });
});

describe("--insecure-no-auth", () => {
  it("says so on stderr even with --log-level error", async () => {
    const child = await startGradecastProcess({
      natsUrl: nats.url,
      dataDir,
      stream: "INSECURE_MODE",
      extraArgs: ["--log-level", "error"],
    });
    try {
      expect(child.output()).toMatch(
        /gradecast: WARNING: grader authentication is off \(--insecure-no-auth\): anyone who reaches 127\.0\.0\.1:\d+ may submit scores for any queue/,
      );
    } finally {
      await child.stop(30_000);
    }
  });
});
