import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials, Metadata, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addGrader } from "../../src/cli/credentials-command.js";
import { createScoreClient, type ScoreClient } from "../../src/client/index.js";
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

/** SubmitScore with a raw `authorization` value (or none), to send malformed headers. */
function submitWithHeader(
  authorization: string | undefined,
  scoreData: ExternalGraderScoreData,
): Promise<{ code: number }> {
  const client = new ScoreServiceClient(gradecast.address, credentials.createInsecure());
  const metadata = new Metadata();
  if (authorization !== undefined) metadata.set("authorization", authorization);
  return new Promise((resolve) => {
    client.submitScore({ scoreData }, metadata, { deadline: Date.now() + 5_000 }, (error) => {
      client.close();
      resolve({ code: error ? error.code : status.OK });
    });
  });
}

describe("grader authentication", () => {
  it("writes only hashes, in a file only its owner may read", async () => {
    const text = await readFile(credentialsPath, "utf8");
    for (const token of tokens.values()) expect(text).not.toContain(token);
    expect(JSON.parse(text).graders["java-grader"]).toEqual({
      tokenHash: expect.stringMatching(/^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/),
      queues: ["java-*"],
    });
    expect((await stat(credentialsPath)).mode & 0o777).toBe(0o600);
  });

  it.each<[string, string, ExpectedStatus, () => string | undefined]>([
    ["no authorization header", "python-grader", "UNAUTHENTICATED", () => undefined],
    ["a header of another scheme", "python-grader", "UNAUTHENTICATED", () => "Token x"],
    ["a bearer header without a token", "python-grader", "UNAUTHENTICATED", () => "Bearer"],
    [
      "a token no grader holds",
      "python-grader",
      "UNAUTHENTICATED",
      () => "Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ],
    [
      "a grader's token for a queue it may not report for",
      "java-8",
      "PERMISSION_DENIED",
      () => `Bearer ${tokenOf("python-grader-1")}`,
    ],
    [
      "a prefix-pattern grader's token for a queue without the prefix",
      "javascript",
      "PERMISSION_DENIED",
      () => `Bearer ${tokenOf("java-grader")}`,
    ],
    [
      "a prefix-pattern grader's token for a queue the pattern matches",
      "java-8",
      "OK",
      () => `Bearer ${tokenOf("java-grader")}`,
    ],
    [
      "a grader's token for its exact queue",
      "python-grader",
      "OK",
      () => `Bearer ${tokenOf("python-grader-1")}`,
    ],
  ])("SubmitScore with %s (queue %s) answers %s", async (_case, queueName, expected, header) => {
    nextSubmissionId += 1n;
    const submissionId = nextSubmissionId;
    const before = storeCounts(sqlitePath(gradecast.config)).scores;
    const answer = await submitWithHeader(header(), sampleScoreData({ submissionId, queueName }));
    expect(status[answer.code]).toBe(expected);
    const after = storeCounts(sqlitePath(gradecast.config)).scores;
    expect(after - before).toBe(expected === "OK" ? 1 : 0);
    if (expected !== "OK") {
      await expect(
        clientWith(tokenOf("python-grader-1")).getScore(submissionId),
      ).rejects.toMatchObject({ code: status.NOT_FOUND });
    }
  });

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

  it("GetScore needs a valid token, of any grader", async () => {
    await clientWith(tokenOf("python-grader-1")).submitScore(
      sampleScoreData({ submissionId: 9002n, queueName: "python-grader" }),
    );
    await expect(clientWith(undefined).getScore(9002n)).rejects.toMatchObject({
      code: status.UNAUTHENTICATED,
    });
    await expect(clientWith("not-a-token").getScore(9002n)).rejects.toMatchObject({
      code: status.UNAUTHENTICATED,
    });
    const lookup = await clientWith(tokenOf("java-grader")).getScore(9002n);
    expect(lookup.event?.metadata?.source).toBe("openedx/gradecast/test/python-grader-1");
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

describe("gradecast serve --credentials", () => {
  it("reloads the credentials file on SIGHUP: a grader taken out of it is refused", async () => {
    const childCredentials = join(dir, "child-credentials.json");
    const keptToken = await addGrader({
      credentialsPath: childCredentials,
      graderName: "kept",
      queues: ["python-grader"],
      isReplacing: false,
    });
    const revokedToken = await addGrader({
      credentialsPath: childCredentials,
      graderName: "revoked",
      queues: ["python-grader"],
      isReplacing: false,
    });
    const child = await startGradecastProcess({
      natsUrl: nats.url,
      dataDir: join(dir, "child-data"),
      stream: "GRADECAST_AUTH_CHILD",
      credentialsPath: childCredentials,
    });
    children.push(child);
    const childClient = (token: string) => {
      const client = createScoreClient(child.address, { deadlineMs: 5_000, token });
      clients.push(client);
      return client;
    };
    const revoked = childClient(revokedToken);
    await revoked.submitScore(sampleScoreData({ submissionId: 9201n }));

    const file = JSON.parse(await readFile(childCredentials, "utf8")) as CredentialsFile;
    delete file.graders.revoked;
    await writeFile(childCredentials, JSON.stringify(file));
    process.kill(child.pid, "SIGHUP");

    const answer = await pollUntil(
      () =>
        revoked.getScore(9201n).then(
          () => "OK",
          (error: { code: number }) => status[error.code] ?? String(error.code),
        ),
      (code) => code === "UNAUTHENTICATED",
    );
    expect(answer).toBe("UNAUTHENTICATED");
    const kept = await childClient(keptToken).submitScore(sampleScoreData({ submissionId: 9202n }));
    expect(kept.replayed).toBe(false);
    expect(await child.stop(10_000)).toMatchObject({ code: 0 });
  });
});
