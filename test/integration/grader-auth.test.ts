import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials, Metadata, status } from "@grpc/grpc-js";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { addGrader, credentialsCommand } from "../../src/cli/credentials-command.js";
import { createScoreClient, fieldViolationsOf, type ScoreClient } from "../../src/client/index.js";
import {
  decodeScoreEvent,
  type ExternalGraderScoreData,
  ScoreServiceClient,
} from "../../src/contract/index.js";
import type { CredentialsFile } from "../../src/server/index.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import {
  pollUntil,
  readStream,
  sqlitePath,
  startGradecast,
  storeCounts,
  type TestGradecast,
} from "../helpers/gradecast.js";
import { type GradecastProcess, startGradecastProcess } from "../helpers/gradecast-process.js";
import { legacyScryptHash, legacyToken } from "../helpers/legacy-credentials.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";

let nats: NatsServerHandle;
let gradecast: TestGradecast;
let dir: string;
let credentialsPath: string;
/** Tokens by grader name, as `gradecast credentials add` printed them. */
const tokens = new Map<string, string>();
const clients: ScoreClient[] = [];
const children: GradecastProcess[] = [];
/** Submission ids of the table cases, one each. */
let nextSubmissionId = 9100n;

type ExpectedStatus = "OK" | "UNAUTHENTICATED" | "PERMISSION_DENIED";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gradecast-auth-"));
  credentialsPath = join(dir, "credentials.json");
  for (const [graderName, queues] of [
    ["python-grader-1", ["python-grader"]],
    ["java-grader", ["java-*"]],
    ["revoked-grader", ["python-grader"]],
  ] as const) {
    tokens.set(
      graderName,
      await addGrader({ credentialsPath, graderName, queues, isReplacing: false }),
    );
  }
  nats = await startNatsServer();
  gradecast = await startGradecast(nats.url, {
    auth: { kind: "tokens", credentialsPath },
    stream: {
      name: "GRADECAST_AUTH",
      deadLetterName: "GRADECAST_AUTH_DLQ",
      subjectPrefix: "gradecast-auth",
      duplicateWindowMs: 120_000,
      maxAgeMs: 0,
      maxBytes: -1,
      replicas: 1,
    },
  });
  await gradecast.server.streamReady;
});

afterAll(async () => {
  for (const client of clients) client.close();
  for (const child of children) await child.kill9();
  await gradecast?.cleanup();
  await nats?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function tokenOf(graderName: string): string {
  const token = tokens.get(graderName);
  if (token === undefined) throw new Error(`no token for ${graderName}`);
  return token;
}

function clientWith(token: string | undefined): ScoreClient {
  const client = createScoreClient(gradecast.address, {
    deadlineMs: 5_000,
    ...(token === undefined ? {} : { token }),
  });
  clients.push(client);
  return client;
}

/**
 * SubmitScore with a raw `authorization` value (or none), to send malformed headers; the
 * answer's code and the fields its violations name.
 */
function submitWithHeader(
  authorization: string | undefined,
  scoreData: ExternalGraderScoreData,
): Promise<{ code: number; violatedFields: string[] }> {
  const client = new ScoreServiceClient(gradecast.address, credentials.createInsecure());
  const metadata = new Metadata();
  if (authorization !== undefined) metadata.set("authorization", authorization);
  return new Promise((resolve) => {
    client.submitScore({ scoreData }, metadata, { deadline: Date.now() + 5_000 }, (error) => {
      client.close();
      resolve({
        code: error ? error.code : status.OK,
        violatedFields: fieldViolationsOf(error?.metadata).map((violation) => violation.field),
      });
    });
  });
}

describe("grader authentication", () => {
  it("hands out gradecast_ tokens and writes only their SHA-256, in a file only its owner may read", async () => {
    const text = await readFile(credentialsPath, "utf8");
    for (const token of tokens.values()) {
      expect(token).toMatch(/^gradecast_[A-Za-z0-9_-]{43}$/);
      expect(text).not.toContain(token.slice("gradecast_".length));
    }
    const javaDigest = createHash("sha256").update(tokenOf("java-grader")).digest("hex");
    expect(JSON.parse(text).graders["java-grader"]).toEqual({
      tokenHash: `sha256$${javaDigest}`,
      queues: ["java-*"],
    });
    expect((await stat(credentialsPath)).mode & 0o777).toBe(0o600);
  });

  it.each<[string, Partial<ExternalGraderScoreData>, ExpectedStatus, () => string | undefined]>([
    ["no authorization header", { queueName: "python-grader" }, "UNAUTHENTICATED", () => undefined],
    [
      "a header of another scheme",
      { queueName: "python-grader" },
      "UNAUTHENTICATED",
      () => "Token x",
    ],
    [
      "a bearer header without a token",
      { queueName: "python-grader" },
      "UNAUTHENTICATED",
      () => "Bearer",
    ],
    [
      "a token no grader holds",
      { queueName: "python-grader" },
      "UNAUTHENTICATED",
      () => "Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ],
    [
      "a gradecast_ token no grader holds",
      { queueName: "python-grader" },
      "UNAUTHENTICATED",
      () => `Bearer gradecast_${"A".repeat(43)}`,
    ],
    [
      "a token no grader holds and an invalid queue name (authenticated first)",
      { queueName: " python" },
      "UNAUTHENTICATED",
      () => `Bearer gradecast_${"A".repeat(43)}`,
    ],
    [
      "a grader's token for a queue it may not report for",
      { queueName: "java-8" },
      "PERMISSION_DENIED",
      () => `Bearer ${tokenOf("python-grader-1")}`,
    ],
    [
      "a prefix-pattern grader's token for a queue without the prefix",
      { queueName: "javascript" },
      "PERMISSION_DENIED",
      () => `Bearer ${tokenOf("java-grader")}`,
    ],
    [
      "a prefix-pattern grader's token for a queue the pattern matches",
      { queueName: "java-8" },
      "OK",
      () => `Bearer ${tokenOf("java-grader")}`,
    ],
    [
      "a grader's token for its exact queue",
      { queueName: "python-grader" },
      "OK",
      () => `Bearer ${tokenOf("python-grader-1")}`,
    ],
  ])("SubmitScore with %s (%j) answers %s", async (_case, fields, expected, header) => {
    nextSubmissionId += 1n;
    const submissionId = nextSubmissionId;
    const before = storeCounts(sqlitePath(gradecast.config)).scores;
    const answer = await submitWithHeader(header(), sampleScoreData({ submissionId, ...fields }));
    expect(status[answer.code]).toBe(expected);
    expect(answer.violatedFields).toEqual([]);
    const after = storeCounts(sqlitePath(gradecast.config)).scores;
    expect(after - before).toBe(expected === "OK" ? 1 : 0);
    if (expected !== "OK") {
      await expect(
        clientWith(tokenOf("python-grader-1")).getScore(submissionId),
      ).rejects.toMatchObject({ code: status.NOT_FOUND });
    }
  });

  it.each<[string, string, Partial<ExternalGraderScoreData>, string[]]>([
    [
      "a queue name with a control character",
      "python-grader-1",
      { queueName: "python\u0007grader" },
      ["score_data.queue_name"],
    ],
    [
      "a queue name its grader's pattern matches but the contract forbids",
      "java-grader",
      { queueName: "java-8 " },
      ["score_data.queue_name"],
    ],
    [
      "a bad score for a queue its grader may not report for",
      "python-grader-1",
      { queueName: "java-8", pointsEarned: 11, pointsPossible: 10 },
      ["score_data.points_earned"],
    ],
  ])(
    "with a grader's token, %s gets INVALID_ARGUMENT with its field violations, not PERMISSION_DENIED",
    async (_case, graderName, fields, violatedFields) => {
      nextSubmissionId += 1n;
      const submissionId = nextSubmissionId;
      const before = storeCounts(sqlitePath(gradecast.config)).scores;
      const answer = await submitWithHeader(
        `Bearer ${tokenOf(graderName)}`,
        sampleScoreData({ submissionId, ...fields }),
      );
      expect(status[answer.code]).toBe("INVALID_ARGUMENT");
      expect(answer.violatedFields).toEqual(violatedFields);
      expect(storeCounts(sqlitePath(gradecast.config)).scores).toBe(before);
    },
  );

  it("names the grader in the event source, and a retry gets the first answer", async () => {
    const client = clientWith(tokenOf("java-grader"));
    const scoreData = sampleScoreData({ submissionId: 9001n, queueName: "java-17" });
    const first = await client.submitScore(scoreData);
    const retry = await client.submitScore(scoreData);
    expect(retry).toMatchObject({ eventId: first.eventId, replayed: true });

    const messages = await readStream(nats.url, gradecast.config.stream.name);
    const message = messages.filter((m) => m.headers["Nats-Msg-Id"] === first.eventId);
    expect(message).toHaveLength(1);
    expect(message[0]?.headers["ce-source"]).toBe("openedx/gradecast/test/java-grader");
    const event = decodeScoreEvent(message[0]?.data ?? new Uint8Array());
    expect(event.metadata?.source).toBe("openedx/gradecast/test/java-grader");
    expect(event.metadata?.source).toMatch(/\/java-grader$/);
  });

  it("GetScore needs a valid token of a grader that may report for the score's queue", async () => {
    await clientWith(tokenOf("python-grader-1")).submitScore(
      sampleScoreData({ submissionId: 9002n, queueName: "python-grader" }),
    );
    await expect(clientWith(undefined).getScore(9002n)).rejects.toMatchObject({
      code: status.UNAUTHENTICATED,
    });
    await expect(clientWith("not-a-token").getScore(9002n)).rejects.toMatchObject({
      code: status.UNAUTHENTICATED,
    });
    const lookup = await clientWith(tokenOf("python-grader-1")).getScore(9002n);
    expect(lookup.event?.metadata?.source).toBe("openedx/gradecast/test/python-grader-1");
    // Another queue's grader learns nothing, not even that the id exists: the same answer
    // as for an id nobody used.
    const otherQueue = await clientWith(tokenOf("java-grader"))
      .getScore(9002n)
      .catch((error: unknown) => error);
    const unknown = await clientWith(tokenOf("java-grader"))
      .getScore(9_999_999n)
      .catch((error: unknown) => error);
    expect(otherQueue).toMatchObject({ code: status.NOT_FOUND });
    expect((otherQueue as Error).message.replace("9002", "N")).toBe(
      (unknown as Error).message.replace("9999999", "N"),
    );
  });

  it("a grader of one queue using another queue's submission id neither blocks nor changes that queue's score", async () => {
    const python = clientWith(tokenOf("python-grader-1"));
    const java = clientWith(tokenOf("java-grader"));
    const learnerScore = sampleScoreData({ submissionId: 9401n, queueName: "python-grader" });
    // The java grader takes the id first, for a learner and problem of its own: that would have
    // pre-empted the python queue's learner when a submission was its id alone.
    const javaScore = sampleScoreData({
      submissionId: 9401n,
      queueName: "java-17",
      userId: "java-learner",
      moduleId: "block-v1:edX+JavaX+2026+type@problem+block@j1",
      pointsEarned: 1,
    });
    expect(await java.submitScore(javaScore)).toMatchObject({
      replayed: false,
      submissionSequence: 1,
    });

    const first = await python.submitScore(learnerScore);
    expect(first).toMatchObject({ replayed: false, submissionSequence: 1 });
    // The java grader again (a retry) and then a regrade of its own: python's history stays.
    expect(await java.submitScore(javaScore)).toMatchObject({ replayed: true });
    expect(await java.submitScore({ ...javaScore, pointsEarned: 2 })).toMatchObject({
      submissionSequence: 2,
    });
    const regrade = await python.submitScore({ ...learnerScore, pointsEarned: 9 });
    expect(regrade).toMatchObject({ replayed: false, submissionSequence: 2 });

    const pythonLookup = await python.getScore(9401n, "python-grader");
    expect(pythonLookup.event?.metadata?.id).toBe(regrade.eventId);
    expect(pythonLookup.event?.scoreData).toEqual({ ...learnerScore, pointsEarned: 9 });
    // Without a queue, each grader gets its own queue's score, whichever is newer.
    expect((await python.getScore(9401n)).event?.metadata?.id).toBe(regrade.eventId);
    const javaLookup = await java.getScore(9401n);
    expect(javaLookup.event?.scoreData).toEqual({ ...javaScore, pointsEarned: 2 });
    expect(javaLookup.event?.submissionSequence).toBe(2);
    // Naming the other queue gets the java grader what an unused id gets it.
    const otherQueue = await java.getScore(9401n, "python-grader").catch((e: unknown) => e);
    const unused = await java.getScore(9_999_998n, "python-grader").catch((e: unknown) => e);
    expect(otherQueue).toMatchObject({ code: status.NOT_FOUND });
    expect((otherQueue as Error).message.replace("9401", "N")).toBe(
      (unused as Error).message.replace("9999998", "N"),
    );

    // Each queue's events carry their own sequences, on their own subjects.
    const messages = await readStream(nats.url, gradecast.config.stream.name);
    const events = messages
      .map((m) => ({ subject: m.subject, event: decodeScoreEvent(m.data) }))
      .filter(({ event }) => event.scoreData?.submissionId === 9401n)
      .map(({ subject, event }) => [subject, event.submissionSequence, event.scoreData?.userId]);
    expect(events).toEqual([
      ["gradecast-auth.scores.v1.java-17", 1, "java-learner"],
      ["gradecast-auth.scores.v1.python-grader", 1, learnerScore.userId],
      ["gradecast-auth.scores.v1.java-17", 2, "java-learner"],
      ["gradecast-auth.scores.v1.python-grader", 2, learnerScore.userId],
    ]);
  });

  it("refuses a submission id reused in its own queue for another learner without saying what differs", async () => {
    const python = clientWith(tokenOf("python-grader-1"));
    await python.submitScore(
      sampleScoreData({ submissionId: 9402n, userId: "learner-stored", queueKey: "key-stored" }),
    );
    const before = storeCounts(sqlitePath(gradecast.config)).scores;
    const refused = await python
      .submitScore(sampleScoreData({ submissionId: 9402n, userId: "learner-sent" }))
      .catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: status.FAILED_PRECONDITION });
    const message = (refused as { details: string }).details;
    expect(message).toBe(
      'submission 9402 in queue "python-grader" is recorded for another learner or problem; within a queue, a submission id belongs to one course, learner, problem and queue key',
    );
    for (const revealing of ["learner-stored", "key-stored", "user_id", "queue_key"]) {
      expect(message).not.toContain(revealing);
    }
    expect(storeCounts(sqlitePath(gradecast.config)).scores).toBe(before);
  });

  it("after the file drops a grader and the credentials are reloaded, its token is refused", async () => {
    const revoked = clientWith(tokenOf("revoked-grader"));
    // Verified (and remembered) before the reload.
    await revoked.submitScore(sampleScoreData({ submissionId: 9003n, queueName: "python-grader" }));

    const file = JSON.parse(await readFile(credentialsPath, "utf8")) as CredentialsFile;
    delete file.graders["revoked-grader"];
    await writeFile(credentialsPath, JSON.stringify(file));
    await gradecast.server.reloadCredentials();

    await expect(
      revoked.submitScore(sampleScoreData({ submissionId: 9004n, queueName: "python-grader" })),
    ).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
    const kept = await clientWith(tokenOf("python-grader-1")).submitScore(
      sampleScoreData({ submissionId: 9005n, queueName: "python-grader" }),
    );
    expect(kept.replayed).toBe(false);
  });

  it("a reload of a broken file fails and keeps the credentials it had", async () => {
    const good = await readFile(credentialsPath, "utf8");
    await writeFile(credentialsPath, "{ not json");
    try {
      await expect(gradecast.server.reloadCredentials()).rejects.toThrow("is not JSON");
    } finally {
      await writeFile(credentialsPath, good);
    }
    const response = await clientWith(tokenOf("java-grader")).submitScore(
      sampleScoreData({ submissionId: 9006n, queueName: "java-21" }),
    );
    expect(response.replayed).toBe(false);
  });
});

describe("a credentials file written before gradecast_ tokens", () => {
  it("keeps working, says how to migrate, and a rotated grader's old token stops at the reload", async () => {
    const legacyPath = join(dir, "legacy-credentials.json");
    const oldToken = legacyToken();
    const oldEntry = {
      tokenHash: await legacyScryptHash(oldToken),
      queues: ["python-grader", "python3-*"],
    };
    await writeFile(legacyPath, JSON.stringify({ graders: { "old-grader": oldEntry } }), {
      mode: 0o600,
    });
    const newToken = await addGrader({
      credentialsPath: legacyPath,
      graderName: "new-grader",
      queues: ["java-*"],
      isReplacing: false,
    });
    const written = JSON.parse(await readFile(legacyPath, "utf8")) as CredentialsFile;
    expect(written.graders["old-grader"]).toEqual(oldEntry);
    const rotateOld = `gradecast credentials add old-grader --queues 'python-grader,python3-*' --replace --credentials ${legacyPath}`;

    const listed: string[] = [];
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      await credentialsCommand((line) => listed.push(line)).parseAsync(
        ["list", "--credentials", legacyPath],
        { from: "user" },
      );
      expect(listed).toEqual(["old-grader\tpython-grader,python3-*", "new-grader\tjava-*"]);
      const notes = stderr.mock.calls.map(([text]) => String(text));
      expect(notes.filter((text) => text.startsWith("gradecast:"))).toEqual([
        `gradecast: grader "old-grader" has a legacy scrypt token hash; give it a new token with: ${rotateOld}\n`,
      ]);
    } finally {
      stderr.mockRestore();
    }

    const logged: Record<string, unknown>[] = [];
    const logger = pino(
      { level: "warn" },
      { write: (line: string) => logged.push(JSON.parse(line) as Record<string, unknown>) },
    );
    const legacyWarnings = () => logged.filter((line) => "legacyGraders" in line);
    const legacyGradecast = await startGradecast(nats.url, {
      auth: { kind: "tokens", credentialsPath: legacyPath },
      logger,
      stream: {
        name: "GRADECAST_AUTH_LEGACY",
        deadLetterName: "GRADECAST_AUTH_LEGACY_DLQ",
        subjectPrefix: "gradecast-auth-legacy",
        duplicateWindowMs: 120_000,
        maxAgeMs: 0,
        maxBytes: -1,
        replicas: 1,
      },
    });
    const clientOf = (token: string) => {
      const client = createScoreClient(legacyGradecast.address, { deadlineMs: 5_000, token });
      clients.push(client);
      return client;
    };
    try {
      expect(legacyWarnings()).toEqual([
        expect.objectContaining({
          legacyGraders: 1,
          rotate: [rotateOld],
        }),
      ]);
      const old = clientOf(oldToken);
      const accepted = await old.submitScore(
        sampleScoreData({ submissionId: 9301n, queueName: "python3-x" }),
      );
      expect(accepted.replayed).toBe(false);
      await clientOf(newToken).submitScore(
        sampleScoreData({ submissionId: 9302n, queueName: "java-8" }),
      );

      const rotatedToken = await addGrader({
        credentialsPath: legacyPath,
        graderName: "old-grader",
        queues: ["python-grader", "python3-*"],
        isReplacing: true,
      });
      expect(rotatedToken).toMatch(/^gradecast_/);
      logged.length = 0;
      await legacyGradecast.server.reloadCredentials();
      expect(legacyWarnings()).toEqual([]);
      await expect(
        old.submitScore(sampleScoreData({ submissionId: 9303n, queueName: "python-grader" })),
      ).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
      const rotated = await clientOf(rotatedToken).submitScore(
        sampleScoreData({ submissionId: 9304n, queueName: "python-grader" }),
      );
      expect(rotated.replayed).toBe(false);
    } finally {
      await legacyGradecast.cleanup();
    }
  });
});

describe("gradecast serve --credentials, reloaded on SIGHUP", () => {
  let child: GradecastProcess;
  let childCredentials: string;
  /** The child's graders' tokens, as the tests rotate them. */
  const childTokens = new Map<string, string>();

  beforeAll(async () => {
    childCredentials = join(dir, "child-credentials.json");
    for (const graderName of ["kept", "revoked", "rotated"]) {
      childTokens.set(
        graderName,
        await addGrader({
          credentialsPath: childCredentials,
          graderName,
          queues: ["python-grader"],
          isReplacing: false,
        }),
      );
    }
    child = await startGradecastProcess({
      natsUrl: nats.url,
      dataDir: join(dir, "child-data"),
      stream: "GRADECAST_AUTH_CHILD",
      credentialsPath: childCredentials,
    });
    children.push(child);
  });

  function childClient(token: string | undefined): ScoreClient {
    if (token === undefined) throw new Error("no such token");
    const client = createScoreClient(child.address, { deadlineMs: 5_000, token });
    clients.push(client);
    return client;
  }

  /** GetScore's status name with `token`: UNAUTHENTICATED for a refused token. */
  function statusWith(token: string | undefined, submissionId: bigint): Promise<string> {
    return childClient(token)
      .getScore(submissionId)
      .then(
        () => "OK",
        (error: { code: number }) => status[error.code] ?? String(error.code),
      );
  }

  /** Sends SIGHUP, then waits until `token` gets `expected` (the reload happened). */
  async function reloadUntil(token: string | undefined, expected: string): Promise<string> {
    process.kill(child.pid, "SIGHUP");
    return pollUntil(
      () => statusWith(token, 9201n),
      (code) => code === expected,
    );
  }

  it("a grader taken out of the file is refused, and the others are kept", async () => {
    const revoked = childClient(childTokens.get("revoked"));
    await revoked.submitScore(sampleScoreData({ submissionId: 9201n }));

    const file = JSON.parse(await readFile(childCredentials, "utf8")) as CredentialsFile;
    delete file.graders.revoked;
    await writeFile(childCredentials, JSON.stringify(file));

    expect(await reloadUntil(childTokens.get("revoked"), "UNAUTHENTICATED")).toBe(
      "UNAUTHENTICATED",
    );
    const kept = await childClient(childTokens.get("kept")).submitScore(
      sampleScoreData({ submissionId: 9202n }),
    );
    expect(kept.replayed).toBe(false);
  });

  it("a token rotated with `credentials add --replace` is refused, and its new token taken", async () => {
    const oldToken = childTokens.get("rotated");
    // Accepted (and so remembered, were anything remembered) before the rotation.
    expect(await statusWith(oldToken, 9201n)).toBe("OK");

    const printed: string[] = [];
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      await credentialsCommand((line) => printed.push(line)).parseAsync(
        [
          "add",
          "rotated",
          "--queues",
          "python-grader",
          "--replace",
          "--credentials",
          childCredentials,
        ],
        { from: "user" },
      );
    } finally {
      stderr.mockRestore();
    }
    const [newToken] = printed;
    expect(newToken).toMatch(/^gradecast_/);
    expect(newToken).not.toBe(oldToken);
    childTokens.set("rotated", newToken ?? "");

    expect(await reloadUntil(oldToken, "UNAUTHENTICATED")).toBe("UNAUTHENTICATED");
    const rotated = await childClient(newToken).submitScore(
      sampleScoreData({ submissionId: 9203n }),
    );
    expect(rotated.replayed).toBe(false);
    expect(await statusWith(childTokens.get("kept"), 9203n)).toBe("OK");
  });

  it("a credentials file broken at the reload is refused, said so, and the previous graders keep working", async () => {
    const good = await readFile(childCredentials, "utf8");
    await writeFile(childCredentials, "{ not json");
    try {
      process.kill(child.pid, "SIGHUP");
      const logged = await pollUntil(
        async () => child.output(),
        (output) => output.includes("credentials reload failed; the previous credentials stay"),
      );
      expect(logged).toContain("credentials reload failed; the previous credentials stay");
      for (const graderName of ["kept", "rotated"]) {
        expect(await statusWith(childTokens.get(graderName), 9203n)).toBe("OK");
      }
      expect(await statusWith(childTokens.get("revoked"), 9203n)).toBe("UNAUTHENTICATED");
      const after = await childClient(childTokens.get("kept")).submitScore(
        sampleScoreData({ submissionId: 9204n }),
      );
      expect(after.replayed).toBe(false);
    } finally {
      await writeFile(childCredentials, good);
    }
    expect(await child.stop(30_000)).toMatchObject({ code: 0 });
  });
});
