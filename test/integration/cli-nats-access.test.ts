import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureStream } from "../../src/events/index.js";
import { findFreePort, runTsxScript, type ScriptRun } from "../helpers/child-process.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";

// `tail` and `dlq` reach a secured NATS with serve's flags and environment variables, and a
// failure is one line that says what and where.

const USER = "lms";
const PASSWORD = "cli-s3cret";
let nats: NatsServerHandle;

beforeAll(async () => {
  nats = await startNatsServer({ extraArgs: ["--user", USER, "--pass", PASSWORD] });
  const connection = await connect({ servers: nats.url, user: USER, pass: PASSWORD });
  try {
    await ensureStream(connection, {
      name: "CLI_ACCESS",
      deadLetterName: "CLI_ACCESS_DLQ",
      subjectPrefix: "gradecast",
      duplicateWindowMs: 60_000,
      maxAgeMs: 0,
      maxBytes: -1,
      replicas: 1,
    });
  } finally {
    await connection.close();
  }
});

afterAll(async () => {
  await nats?.cleanup();
});

function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<ScriptRun> {
  return runTsxScript("src/cli/run.ts", args, {
    env: { ...process.env, ...env },
    timeoutMs: 60_000,
    killSignal: "SIGKILL",
  });
}

describe("tail and dlq against a NATS that needs credentials", () => {
  it("dlq takes the password from the environment and its stream follows --stream", async () => {
    const run = await runCli(["dlq", "list", "--nats-url", nats.url, "--stream", "CLI_ACCESS"], {
      GRADECAST_NATS_USER: USER,
      GRADECAST_NATS_PASSWORD: PASSWORD,
    });
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: "" });
    expect(run.stdout).toBe("0 dead letter(s) in CLI_ACCESS_DLQ\n");
  });

  it("tail names a missing stream in one line, exit 1", async () => {
    const run = await runCli([
      "tail",
      "--nats-url",
      nats.url,
      "--nats-user",
      USER,
      "--nats-password",
      PASSWORD,
      "--stream",
      "NO_SUCH_STREAM",
      "--max",
      "1",
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      'gradecast: no stream "NO_SUCH_STREAM" on this NATS server (--stream): is gradecast serve running against it, with the same stream name?\n',
    );
  });

  it("a NATS it cannot reach is one line naming the URL, its password hidden", async () => {
    const url = `nats://${USER}:${PASSWORD}@127.0.0.1:${await findFreePort()}`;
    const run = await runCli(["dlq", "list", "--nats-url", url]);
    expect(run.code).toBe(1);
    expect(run.stderr.trim().split("\n")).toHaveLength(1);
    expect(run.stderr).toMatch(
      /^gradecast: cannot connect to NATS at nats:\/\/lms:\*\*\*@127\.0\.0\.1:\d+/,
    );
    expect(run.stderr).not.toContain(PASSWORD);
  });
});
