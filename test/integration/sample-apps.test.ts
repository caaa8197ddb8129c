import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listDeadLetters } from "../../src/subscriber/index.js";
import {
  type ExitStatus,
  lineSplitter,
  OutputTail,
  runTsxScript,
  watchExit,
} from "../helpers/child-process.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import { pollUntil, startGradecast, type TestGradecast } from "../helpers/gradecast.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";

let nats: NatsServerHandle;
let gradecast: TestGradecast;
let connection: NatsConnection;
let dir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gradecast-sample-apps-"));
  nats = await startNatsServer();
  gradecast = await startGradecast(nats.url);
  await gradecast.server.streamReady;
  connection = await connect({ servers: nats.url });
});

afterAll(async () => {
  for (const child of children) child.kill("SIGKILL");
  await connection?.close();
  await gradecast?.cleanup();
  await nats?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

describe("the sample grader and sample LMS", () => {
  it.each([
    ["examples/sample-grader.ts", ["--submission-id", "--score", "--server", "--token"]],
    [
      "examples/sample-lms/lms.ts",
      ["--nats-url", "--durable", "--fail-submission", "--max-deliver"],
    ],
  ])("%s --help prints its options and exits 0", async (script, options) => {
    const run = await runTsxScript(script, ["--help"], {
      timeoutMs: 60_000,
      killSignal: "SIGKILL",
    });
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: "" });
    expect(run.stdout).toMatch(/^Usage: sample-(grader|lms) \[options\]/);
    for (const option of options) expect(run.stdout).toContain(option);
  });

  it("an unknown option is one line of usage error and exit code 1, not a stack trace", async () => {
    const run = await runTsxScript("examples/sample-grader.ts", ["--bogus"], {
      timeoutMs: 60_000,
      killSignal: "SIGKILL",
    });
    expect(run.code).toBe(1);
    expect(run.stderr.trim()).toBe("error: unknown option '--bogus'");
  });

  it("the LMS with --fail-submission retries that submission, then dead-letters it under its consumer name; others are applied", async () => {
    const durable = "sample-lms-fails";
    const output = new OutputTail(500);
    const lines: string[] = [];
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "examples/sample-lms/lms.ts",
        "--nats-url",
        nats.url,
        "--stream",
        gradecast.config.stream.name,
        "--durable",
        durable,
        "--db",
        join(dir, "gradebook.sqlite"),
        "--fail-submission",
        "61002",
        "--max-deliver",
        "2",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    children.push(child);
    const onLine = (line: string) => {
      lines.push(line);
      output.push(line);
    };
    child.stdout?.setEncoding("utf8").on("data", lineSplitter(onLine));
    child.stderr?.setEncoding("utf8").on("data", lineSplitter(onLine));
    const exited: Promise<ExitStatus> = watchExit(child, output);
    await pollUntil(
      async () => lines.some((line) => line.startsWith("[lms] subscribed to")),
      (isSubscribed) => isSubscribed,
      60_000,
    );

    const applied = await gradecast.client.submitScore(sampleScoreData({ submissionId: 61_001n }));
    const refused = await gradecast.client.submitScore(sampleScoreData({ submissionId: 61_002n }));
    const [letter] = await pollUntil(
      () => listDeadLetters(connection, gradecast.config.stream.deadLetterName),
      (entries) => entries.length >= 1,
      60_000,
    );
    expect(letter).toMatchObject({
      eventId: refused.eventId,
      consumer: durable,
      reason: "max-deliver",
      deliveryCount: 2,
      error: "--fail-submission 61002: the sample LMS refuses it on purpose (delivery 2)",
    });

    await pollUntil(
      async () => lines.filter((line) => line.startsWith("[lms] status: ")),
      (statuses) => statuses.some((line) => line.includes('"dead-lettered"')),
      60_000,
    );
    child.kill("SIGTERM");
    expect(await exited).toEqual({ code: 0, signal: null });

    // Every status is one JSON line, the retried event's bigint id written as a string.
    const statuses = lines
      .filter((line) => line.startsWith("[lms] status: "))
      .map((line) => JSON.parse(line.slice("[lms] status: ".length)));
    expect(statuses.map((status) => status.type)).toEqual(["handler-failed", "dead-lettered"]);
    expect(statuses[0].event).toMatchObject({
      id: refused.eventId,
      scoreData: { submissionId: "61002" },
    });
    expect(lines.some((line) => line.includes(`submission 61001 seq 1`))).toBe(true);
    expect(lines.some((line) => line.includes(`(event ${applied.eventId})`))).toBe(true);
    expect(lines.some((line) => line.includes("submission 61002 seq"))).toBe(false);
  });
});
