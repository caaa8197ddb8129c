import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { status } from "@grpc/grpc-js";
import { jetstream } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addGrader } from "../../src/cli/credentials-command.js";
import { SCORE_SERVICE_CONFIG } from "../../src/client/service-config.js";
import {
  ExternalGraderScoreSubmitted,
  SCORE_SUBMITTED_EVENT_TYPE,
} from "../../src/contract/index.js";
import type { ServeConfig } from "../../src/server/index.js";
import { type ScoreEvent, subscribeToScores } from "../../src/subscriber/index.js";
import { findFreePort } from "../helpers/child-process.js";
import { startFlakyScoreFront } from "../helpers/flaky-score-front.js";
import {
  buildGoPrograms,
  type RunningGoProgram,
  runGoProgram,
  startGoProgram,
} from "../helpers/go-programs.js";
import { pollUntil, readStream, startGradecast, type TestGradecast } from "../helpers/gradecast.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";
import { makeTestCertificates, type TestCertificates } from "../helpers/test-certificates.js";

const REPO_ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
/** The test venv of scripts/python-tests.sh: nats-py and the installed gradecast_openedx. */
const VENV_PYTHON = join(REPO_ROOT, ".data/python-venv/bin/python");
const STREAM = "GRADECAST_GO";
const PREFIX = "gradecast-go";
const run = promisify(execFile);

let nats: NatsServerHandle;
let gradecast: TestGradecast;
let tlsGradecast: TestGradecast | undefined;
let certificates: TestCertificates;
let dir: string;
let credentialsPath: string;
let token: string;
let connection: NatsConnection;
const lmsPrograms: RunningGoProgram[] = [];
/** Each test its own submission ids. */
let nextSubmissionId = 7_000;

const streamConfig = (name: string, subjectPrefix: string): ServeConfig["stream"] => ({
  name,
  deadLetterName: `${name}_DLQ`,
  subjectPrefix,
  duplicateWindowMs: 120_000,
  maxAgeMs: 0,
  maxBytes: -1,
  replicas: 1,
});

beforeAll(async () => {
  await buildGoPrograms();
  if (!existsSync(VENV_PYTHON)) {
    // CI runs the Python tests after vitest; the venv they use is made here when missing.
    // Only the venv matters here: a later step of the script (ruff) failing is its own test's.
    const made = await run("bash", ["scripts/python-tests.sh", "--collect-only", "-q"], {
      cwd: REPO_ROOT,
      timeout: 900_000,
    }).catch((error: unknown) => error);
    if (!existsSync(VENV_PYTHON)) {
      throw new Error("scripts/python-tests.sh did not make the test venv", { cause: made });
    }
  }
  dir = await mkdtemp(join(tmpdir(), "gradecast-go-"));
  credentialsPath = join(dir, "graders.json");
  token = await addGrader({
    credentialsPath,
    graderName: "go-grader-1",
    queues: ["go-*"],
    isReplacing: false,
  });
  certificates = await makeTestCertificates();
  nats = await startNatsServer();
  gradecast = await startGradecast(nats.url, {
    auth: { kind: "tokens", credentialsPath },
    stream: streamConfig(STREAM, PREFIX),
  });
  await gradecast.server.streamReady;
  connection = await connect({ servers: nats.url });
}, 900_000);

afterAll(async () => {
  for (const lms of lmsPrograms) await lms.stop();
  await connection?.close();
  await tlsGradecast?.cleanup();
  await gradecast?.cleanup();
  await nats?.cleanup();
  await certificates?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Runs the Go grader with the grader's token against `address` (the plaintext gradecast). */
function runGrader(args: readonly string[], address = gradecast.address) {
  return runGoProgram("go-grader", ["--address", address, "--token", token, ...args]);
}

/** What the Go grader prints for an accepted score: `[event id, sequence, new|replayed]`. */
function parseGraderAnswer(stdout: string): [string, number, string] {
  const answer = /^submission \d+: event (\S+), sequence (\d+), (new|replayed), published\n$/.exec(
    stdout,
  );
  if (!answer) throw new Error(`unexpected go-grader output: ${JSON.stringify(stdout)}`);
  return [answer[1] ?? "", Number(answer[2]), answer[3] ?? ""];
}

/** Starts the Go LMS on this suite's stream with a durable of its own. */
function startLms(durable: string, args: readonly string[] = []): RunningGoProgram {
  const lms = startGoProgram("go-lms", [
    ...["--nats", nats.url, "--stream", STREAM, "--subject-prefix", PREFIX],
    ...["--durable", durable, ...args],
  ]);
  lmsPrograms.push(lms);
  return lms;
}

/** The envelope of an `applied {...}` line of the Go LMS. */
function appliedEvent(line: string): ExternalGraderScoreSubmitted {
  return ExternalGraderScoreSubmitted.fromJSON(JSON.parse(line.slice("applied ".length)));
}

const isAppliedLine = (eventId: string) => (line: string) =>
  line.startsWith("applied ") && appliedEvent(line).metadata?.id === eventId;

/** A stream message copied back into the stream under a new Nats-Msg-Id, as a re-drive does. */
async function publishCopy(streamSequence: number): Promise<void> {
  const stored = (await readStream(nats.url, STREAM)).find((m) => m.seq === streamSequence);
  if (!stored) throw new Error(`no message ${streamSequence} in ${STREAM}`);
  const copy = natsHeaders();
  for (const [name, value] of Object.entries(stored.headers)) {
    if (name !== "Nats-Msg-Id") copy.set(name, value);
  }
  await jetstream(connection).publish(stored.subject, stored.data, { headers: copy });
}

describe("the Go grader and the Go LMS", () => {
  it("a score the Go grader submits reaches the Go LMS, a TypeScript subscriber and the Python bridge with identical fields", async () => {
    const queueName = "go-identical";
    const submissionId = nextSubmissionId++;
    const received: ScoreEvent[] = [];
    const subscription = await subscribeToScores(
      { connection, stream: STREAM, subjectPrefix: PREFIX, queueName },
      (event) => {
        received.push(event);
      },
    );
    try {
      const lms = startLms("go-lms-identical", ["--queue", queueName]);
      const graded = await runGrader([
        ...["--queue-name", queueName, "--submission-id", String(submissionId)],
        ...["--points-possible", "12", "--points-earned", "9", "--user-id", "learner-go-1"],
      ]);
      expect(graded.code, graded.stderr).toBe(0);
      const [eventId, sequence, outcome] = parseGraderAnswer(graded.stdout);
      expect([sequence, outcome]).toEqual([1, "new"]);

      const fromGo = appliedEvent(await lms.waitForLine(isAppliedLine(eventId)));
      const ts = await pollUntil(
        async () => received.find((event) => event.id === eventId),
        (event) => event !== undefined,
      );
      const python = await run(
        VENV_PYTHON,
        [
          "test/helpers/python_score_reader.py",
          ...[
            "--nats",
            nats.url,
            "--stream",
            STREAM,
            "--subject",
            `${PREFIX}.scores.v1.${queueName}`,
          ],
          ...["--event-id", eventId],
        ],
        {
          cwd: REPO_ROOT,
          timeout: 60_000,
          env: { ...process.env, PYTHONPATH: join(REPO_ROOT, "gen/python") },
        },
      );
      const fromPython = ExternalGraderScoreSubmitted.fromJSON(JSON.parse(python.stdout));

      if (ts === undefined) throw new Error(`the TypeScript subscriber did not get ${eventId}`);
      const fromTypeScript: ExternalGraderScoreSubmitted = {
        metadata: {
          id: ts.id,
          eventType: ts.type,
          minorversion: ts.minorversion,
          source: ts.source,
          sourcehost: ts.sourcehost,
          sourcelib: ts.sourcelib,
          time: ts.time,
        },
        scoreData: ts.scoreData,
        submissionSequence: ts.submissionSequence,
      };
      // What the grader sent, and what gradecast added: the same in all three languages.
      expect(fromGo).toEqual(fromTypeScript);
      expect(fromPython).toEqual(fromTypeScript);
      expect(fromGo).toMatchObject({
        metadata: { id: eventId, eventType: SCORE_SUBMITTED_EVENT_TYPE },
        scoreData: {
          pointsPossible: 12,
          pointsEarned: 9,
          courseId: "course-v1:edX+DemoX+Demo_Course",
          scoreMsg: JSON.stringify({
            correct: false,
            msg: "<p>9/12 tests passed.</p>",
            score: 0.75,
          }),
          submissionId: BigInt(submissionId),
          userId: "learner-go-1",
          moduleId:
            "block-v1:edX+DemoX+Demo_Course+type@problem+block@d2e35c1d294b4ba0b3b1048615605d2a",
          queueKey: `key-${submissionId}`,
          queueName,
        },
        submissionSequence: 1,
      });
    } finally {
      await subscription.stop();
    }
  });

  it("the Go grader prints every field violation of a refused score and exits 2", async () => {
    const refused = await runGrader([
      ...["--queue-name", "go-refused", "--submission-id", "0", "--points-earned", "11"],
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stdout).toBe("");
    const lines = refused.stderr.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^refused \(INVALID_ARGUMENT\): /);
    expect(lines.slice(1)).toEqual([
      "  score_data.points_earned: must be <= points_possible (10), got 11",
      "  score_data.submission_id: must be > 0, got 0",
    ]);
  });

  it("the Go grader resends the identical request until gradecast is up, and a repeat is answered as a replay", async () => {
    const address = `127.0.0.1:${await findFreePort()}`;
    const submissionId = String(nextSubmissionId++);
    const args = ["--address", address, "--token", token, "--queue-name", "go-resend"];
    const scoreArgs = ["--submission-id", submissionId, "--points-earned", "4"];
    const grader = startGoProgram("go-grader", [...args, ...scoreArgs, "--resend-for", "60s"]);
    let late: TestGradecast | undefined;
    try {
      // Nothing listens there yet: the call fails UNAVAILABLE, gRPC's retries included.
      const resend = await grader.waitForLine((line) => line.startsWith("attempt 1: "), {
        from: "stderr",
      });
      expect(resend).toMatch(
        /^attempt 1: UNAVAILABLE: .*; sending the identical request again in 500ms$/,
      );
      late = await startGradecast(nats.url, {
        listen: address,
        auth: { kind: "tokens", credentialsPath },
        stream: streamConfig("GRADECAST_GO_LATE", "gradecast-go-late"),
      });
      const answer = await grader.waitForLine((line) => line.startsWith("submission "));
      expect((await grader.exited()).code, grader.logLines.join("\n")).toBe(0);
      const [eventId, sequence, outcome] = parseGraderAnswer(`${answer}\n`);
      expect([sequence, outcome]).toEqual([1, "new"]);

      const again = await runGoProgram("go-grader", [...args, ...scoreArgs]);
      expect(again.code, again.stderr).toBe(0);
      expect(parseGraderAnswer(again.stdout)).toEqual([eventId, 1, "replayed"]);
      const events = await pollUntil(
        () => readStream(nats.url, "GRADECAST_GO_LATE"),
        (messages) => messages.length >= 1,
      );
      expect(events.map((message) => message.headers["ce-id"])).toEqual([eventId]);
    } finally {
      await grader.stop();
      await late?.cleanup();
    }
  });

  it("gRPC itself resends the identical SubmitScore after UNAVAILABLE, as the published service config says", async () => {
    const upstream = await startGradecast(nats.url, {
      stream: streamConfig("GRADECAST_GO_RETRY", "gradecast-go-retry"),
    });
    const args = ["--queue-name", "go-retry", "--points-earned", "3"];
    try {
      // The first attempt never reaches gradecast; the second is stored but its answer lost.
      const front = await startFlakyScoreFront(upstream.address, ["unavailable", "lose-answer"]);
      const submissionId = String(nextSubmissionId++);
      const retried = await runGoProgram("go-grader", [
        ...["--address", front.address, "--submission-id", submissionId, ...args],
      ]);
      await front.close();
      expect(retried.code, retried.stderr).toBe(0);
      // No resend of the grader's own: gRPC retried within the one call.
      expect(retried.stderr).toBe("");
      // Replayed, not a regrade (sequence 2): the retry carried the very same score.
      expect(parseGraderAnswer(retried.stdout).slice(1)).toEqual([1, "replayed"]);
      expect(front.attempts).toEqual([
        { previousAttempts: undefined, code: status.UNAVAILABLE },
        { previousAttempts: "1", code: status.UNAVAILABLE },
        { previousAttempts: "2", code: status.OK },
      ]);

      // With gRPC's retries turned off, the grader's own resends take over.
      const slowFront = await startFlakyScoreFront(upstream.address, ["unavailable"]);
      const resent = await runGoProgram(
        "go-grader",
        ["--address", slowFront.address, "--submission-id", String(nextSubmissionId++), ...args],
        { env: { GRPC_GO_RETRY: "off" } },
      );
      await slowFront.close();
      expect(resent.code, resent.stderr).toBe(0);
      expect(resent.stderr).toMatch(/^attempt 1: UNAVAILABLE: front: scripted UNAVAILABLE; /);
      expect(slowFront.attempts.map((attempt) => attempt.previousAttempts)).toEqual([
        undefined,
        undefined,
      ]);
    } finally {
      await upstream.cleanup();
    }
  });

  it("the Go grader dials with the service config the TypeScript client publishes", async () => {
    const source = await readFile(join(REPO_ROOT, "examples/go-grader/connection.go"), "utf8");
    const goConfig = /^const scoreServiceConfig = `([^`]*)`$/m.exec(source)?.[1];
    expect(goConfig).toBeDefined();
    expect(JSON.parse(goConfig ?? "")).toEqual(SCORE_SERVICE_CONFIG);
  });

  it("the Go grader reports over TLS with its token, and will not send the token in plaintext beyond loopback", async () => {
    tlsGradecast = await startGradecast(nats.url, {
      auth: { kind: "tokens", credentialsPath },
      tls: { certPem: certificates.serverCert, keyPem: certificates.serverKey },
      stream: streamConfig("GRADECAST_GO_TLS", "gradecast-go-tls"),
    });
    const args = ["--queue-name", "go-tls", "--submission-id", String(nextSubmissionId++)];
    const overTls = await runGrader(
      [...args, "--points-earned", "10", "--tls-ca", certificates.caPath],
      tlsGradecast.address,
    );
    expect(overTls.code, overTls.stderr).toBe(0);
    expect(parseGraderAnswer(overTls.stdout).slice(1)).toEqual([1, "new"]);

    const plaintext = await runGrader([...args, "--points-earned", "10"], "192.0.2.1:50051");
    expect(plaintext.code).toBe(1);
    expect(plaintext.stderr).toContain(
      "refusing to send a grader token without TLS to 192.0.2.1:50051",
    );
  });
});

describe("the Go LMS", () => {
  it("naks a failed apply with a delay and applies the redelivery once", async () => {
    const queueName = "go-naks";
    const lms = startLms("go-lms-naks", [
      ...["--queue", queueName, "--fail-first", "1", "--nak-delay", "2s"],
    ]);
    const graded = await runGrader([
      ...["--queue-name", queueName, "--submission-id", String(nextSubmissionId++)],
      ...["--points-earned", "6"],
    ]);
    expect(graded.code, graded.stderr).toBe(0);
    const [eventId] = parseGraderAnswer(graded.stdout);

    const nak = await lms.waitForLine((line) => line.startsWith(`nak ${eventId}`));
    const nakAt = Date.now();
    expect(nak).toBe(
      `nak ${eventId} (delivery 1): simulated failure (--fail-first); redelivery in 2s`,
    );
    await lms.waitForLine(isAppliedLine(eventId));
    // JetStream held the event back for the delay (less a margin for the printing).
    expect(Date.now() - nakAt).toBeGreaterThanOrEqual(1_500);
    expect(lms.lines.filter((line) => line.includes(eventId))).toHaveLength(2);
  });

  it("applies each submission's highest sequence once: a second copy and an older regrade are ignored, across a restart", async () => {
    const queueName = "go-dupes";
    const gradebookPath = join(dir, "dupes-gradebook.json");
    const submissionId = String(nextSubmissionId++);
    const lms = startLms("go-lms-dupes", ["--queue", queueName, "--gradebook", gradebookPath]);
    const args = ["--queue-name", queueName, "--submission-id", submissionId];
    const [firstId] = parseGraderAnswer(
      (await runGrader([...args, "--points-earned", "5"])).stdout,
    );
    const [regradeId, regradeSequence] = parseGraderAnswer(
      (await runGrader([...args, "--points-earned", "8"])).stdout,
    );
    expect(regradeSequence).toBe(2);
    await lms.waitForLine(isAppliedLine(regradeId));

    const stored = await readStream(nats.url, STREAM);
    const seqOf = (eventId: string) => stored.find((m) => m.headers["ce-id"] === eventId)?.seq ?? 0;
    await publishCopy(seqOf(regradeId));
    await publishCopy(seqOf(firstId));
    const ignoredLine = (eventId: string, sequence: number) =>
      `ignored ${eventId} (queue "${queueName}", submission ${submissionId}: sequence ${sequence}, gradebook holds 2)`;
    await lms.waitForLine((line) => line === ignoredLine(firstId, 1));
    expect(lms.lines).toContain(ignoredLine(regradeId, 2));
    expect(lms.lines.filter((line) => line.startsWith("applied "))).toHaveLength(2);
    expect((await lms.stop()).code).toBe(0);

    // A new durable replays the whole stream into the saved gradebook: nothing applies again.
    const replay = startLms("go-lms-dupes-replay", [
      ...["--queue", queueName, "--gradebook", gradebookPath],
    ]);
    await pollUntil(
      async () => replay.lines.filter((line) => line.startsWith("ignored ")).length,
      (count) => count >= 4,
    );
    expect(replay.lines.filter((line) => line.startsWith("applied "))).toEqual([]);
    const gradebook = JSON.parse(await readFile(gradebookPath, "utf8")) as unknown;
    expect(gradebook).toEqual([
      {
        queue_name: queueName,
        submission_id: submissionId,
        submission_sequence: 2,
        event_id: regradeId,
        points_earned: 8,
        points_possible: 10,
        user_id: "106ecd878f4148a5cabb6bbb0979b730",
      },
    ]);
  });

  it("routes by the ce-queuename header: another queue's event is skipped without decoding its payload", async () => {
    const lms = startLms("go-lms-routing", ["--queue", "go-routed"]);
    const js = jetstream(connection);
    const junk = (eventId: string, queueName: string) => {
      const h = natsHeaders();
      h.set("ce-id", eventId);
      h.set("ce-type", SCORE_SUBMITTED_EVENT_TYPE);
      h.set("ce-queuename", queueName);
      return js.publish(`${PREFIX}.scores.v1.${queueName}`, new Uint8Array([0xff, 0xff, 0xff]), {
        headers: h,
      });
    };
    await junk("junk-elsewhere", "go-elsewhere");
    await junk("junk-routed", "go-routed");
    await lms.waitForLine((line) => line.startsWith("term junk-routed: "));
    expect(lms.lines).toContain('skipped junk-elsewhere (queue "go-elsewhere" is not routed here)');
    expect(lms.lines.find((line) => line.startsWith("term junk-routed: "))).toMatch(
      /payload is not an ExternalGraderScoreSubmitted/,
    );
  });
});
