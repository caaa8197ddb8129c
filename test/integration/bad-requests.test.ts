import { Client, credentials, type ServiceError, status } from "@grpc/grpc-js";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ScoreCallError } from "../../src/client/index.js";
import {
  decodeScoreEvent,
  type ExternalGraderScoreData,
  SubmitScoreRequest,
  validateScoreData,
} from "../../src/contract/index.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import {
  readStream,
  sqlitePath,
  startGradecast,
  storeCounts,
  type TestGradecast,
} from "../helpers/gradecast.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";

const SUBMIT_SCORE_PATH = "/gradecast.v1.ScoreService/SubmitScore";

/** One request the server must refuse, and every field path its answer must name. */
interface RefusedRequest {
  name: string;
  /** `undefined`: a SubmitScoreRequest without score_data at all. */
  scoreData: ExternalGraderScoreData | undefined;
  fields: string[];
}

const bad = (
  name: string,
  overrides: Partial<ExternalGraderScoreData>,
  fields: string[],
): RefusedRequest => ({ name, scoreData: sampleScoreData(overrides), fields });

const BAD_REQUESTS: RefusedRequest[] = [
  { name: "a request without score_data", scoreData: undefined, fields: ["score_data"] },
  {
    name: "a score_data with every field unset",
    scoreData: {
      pointsPossible: 0,
      pointsEarned: 0,
      courseId: "",
      scoreMsg: "",
      submissionId: 0n,
      userId: "",
      moduleId: "",
      queueKey: "",
      queueName: "",
    },
    fields: [
      "score_data.points_possible",
      "score_data.course_id",
      "score_data.submission_id",
      "score_data.user_id",
      "score_data.module_id",
      "score_data.queue_key",
      "score_data.queue_name",
    ],
  },
  // points_possible and points_earned
  bad("points_possible 0", { pointsPossible: 0, pointsEarned: 0 }, ["score_data.points_possible"]),
  bad("negative points_possible", { pointsPossible: -10 }, ["score_data.points_possible"]),
  bad("negative points_earned", { pointsEarned: -1 }, ["score_data.points_earned"]),
  bad("points_earned above points_possible", { pointsPossible: 10, pointsEarned: 11 }, [
    "score_data.points_earned",
  ]),
  // course_id
  bad("an empty course_id", { courseId: "" }, ["score_data.course_id"]),
  bad("a whitespace-only course_id", { courseId: "   " }, ["score_data.course_id"]),
  bad("a course_id of 256 ASCII bytes", { courseId: "c".repeat(256) }, ["score_data.course_id"]),
  bad("a course_id of 128 characters but 256 bytes ('é' is 2)", { courseId: "é".repeat(128) }, [
    "score_data.course_id",
  ]),
  bad("a course_id with a space", { courseId: "course-v1:edX+Demo X+2026" }, [
    "score_data.course_id",
  ]),
  bad("a course_id with a NUL", { courseId: "course-v1:edX+DemoX\u0000+2026" }, [
    "score_data.course_id",
  ]),
  // score_msg
  bad("a score_msg of 65537 bytes", { scoreMsg: "m".repeat(65_537) }, ["score_data.score_msg"]),
  bad(
    "a score_msg of 21846 characters but 65538 bytes ('✓' is 3)",
    { scoreMsg: "✓".repeat(21_846) },
    ["score_data.score_msg"],
  ),
  // submission_id
  bad("submission_id 0", { submissionId: 0n }, ["score_data.submission_id"]),
  bad("submission_id -1", { submissionId: -1n }, ["score_data.submission_id"]),
  bad("the most negative int64 submission_id", { submissionId: -(2n ** 63n) }, [
    "score_data.submission_id",
  ]),
  // user_id
  bad("an empty user_id", { userId: "" }, ["score_data.user_id"]),
  bad("a user_id of 256 bytes", { userId: "u".repeat(256) }, ["score_data.user_id"]),
  bad("a user_id of 86 characters but 258 bytes ('€' is 3)", { userId: "€".repeat(86) }, [
    "score_data.user_id",
  ]),
  bad("a user_id with a newline", { userId: "106ecd87\n8f4148a5" }, ["score_data.user_id"]),
  // module_id
  bad("an empty module_id", { moduleId: "" }, ["score_data.module_id"]),
  bad("a module_id of 64 emoji, 256 bytes ('🎓' is 4)", { moduleId: "🎓".repeat(64) }, [
    "score_data.module_id",
  ]),
  bad("a module_id with DEL", { moduleId: "block-v1:edX\u007f+DemoX" }, ["score_data.module_id"]),
  // queue_key
  bad("an empty queue_key", { queueKey: "" }, ["score_data.queue_key"]),
  bad("a queue_key of 256 bytes", { queueKey: "k".repeat(256) }, ["score_data.queue_key"]),
  bad("a queue_key with an escape character", { queueKey: "ffcd\u001b[31m" }, [
    "score_data.queue_key",
  ]),
  // queue_name: any printable name up to 128 bytes (the subject escapes what NATS reserves)
  bad("an empty queue_name", { queueName: "" }, ["score_data.queue_name"]),
  bad("a whitespace-only queue_name", { queueName: "  " }, ["score_data.queue_name"]),
  bad("a queue_name with a leading space", { queueName: " python" }, ["score_data.queue_name"]),
  bad("a queue_name with a trailing tab", { queueName: "python\t" }, ["score_data.queue_name"]),
  bad("a queue_name with a control character", { queueName: "python\u0001" }, [
    "score_data.queue_name",
  ]),
  bad("a queue_name with a replacement character", { queueName: "gr\uFFFDder" }, [
    "score_data.queue_name",
  ]),
  bad("a queue_name of 129 bytes", { queueName: "q".repeat(129) }, ["score_data.queue_name"]),
  bad("a queue_name of 130 bytes in 65 'é'", { queueName: "é".repeat(65) }, [
    "score_data.queue_name",
  ]),
  // several rules at once: every one is reported
  bad(
    "points_earned above points_possible and queue_name ' a.b'",
    { pointsEarned: 12, queueName: " a.b" },
    ["score_data.points_earned", "score_data.queue_name"],
  ),
  bad(
    "an oversized course_id, a negative submission_id and a user_id with a tab",
    { courseId: "c".repeat(300), submissionId: -7n, userId: "a\tb" },
    ["score_data.course_id", "score_data.submission_id", "score_data.user_id"],
  ),
];

/** The ScoreCallError a SubmitScore call fails with; fails the test if the call succeeds. */
async function refusal(
  gradecast: TestGradecast,
  scoreData: ExternalGraderScoreData | undefined,
): Promise<ScoreCallError> {
  // The wrapper sends `{ scoreData }` as is: undefined leaves score_data off the wire.
  const outcome = await gradecast.client.submitScore(scoreData as ExternalGraderScoreData).then(
    (response) => response,
    (error: unknown) => error,
  );
  if (!(outcome instanceof ScoreCallError)) {
    throw new Error(`expected SubmitScore to fail, got ${JSON.stringify(outcome)}`);
  }
  return outcome;
}

describe("SubmitScore refuses every bad request with INVALID_ARGUMENT and stores nothing", () => {
  let nats: NatsServerHandle;
  let gradecast: TestGradecast;

  beforeAll(async () => {
    nats = await startNatsServer();
    gradecast = await startGradecast(nats.url);
    await gradecast.server.streamReady;
  });

  afterAll(async () => {
    await gradecast?.cleanup();
    await nats?.cleanup();
  });

  it.each(BAD_REQUESTS.map((request) => [request.name, request] as const))(
    "refuses %s, naming exactly its bad fields",
    async (_name, { scoreData, fields }) => {
      const error = await refusal(gradecast, scoreData);
      expect(error.code).toBe(status.INVALID_ARGUMENT);
      expect(new Set(error.violations.map((v) => v.field))).toEqual(new Set(fields));
      // The trailer carries every violation validation found, descriptions intact.
      expect(error.violations).toEqual(validateScoreData(scoreData));
      for (const field of fields) expect(error.details).toContain(`${field} `);
      for (const { field, description } of error.violations) {
        expect(description).not.toBe("");
        expect(error.details).toContain(`${field} ${description}`);
      }
    },
  );

  it("has stored, queued and published nothing after all of them", async () => {
    expect(storeCounts(sqlitePath(gradecast.config))).toEqual({ scores: 0, pending: 0, outbox: 0 });
    expect(await readStream(nats.url, gradecast.config.stream.name)).toEqual([]);
    // The stream exists and is empty, so the empty read above is not a missing stream.
    const nc = await connect({ servers: nats.url });
    try {
      const info = await (await jetstreamManager(nc)).streams.info(gradecast.config.stream.name);
      expect(info.state.messages).toBe(0);
    } finally {
      await nc.close();
    }
  });
});

/** What a call of `path` with `body` as the raw request bytes was answered. */
function callRaw(
  address: string,
  path: string,
  body: Buffer,
): Promise<{ error: ServiceError | null; response?: Buffer }> {
  const client = new Client(address, credentials.createInsecure());
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      (bytes: Buffer) => bytes,
      (bytes: Buffer) => bytes,
      body,
      { deadline: Date.now() + 30_000 },
      (error, response) => {
        client.close();
        resolve({ error, response });
      },
    );
  });
}

describe("malformed input never crashes the server", () => {
  // Its own NATS and gradecast: the valid score at the end must not reach the suite above.
  let nats: NatsServerHandle;
  let gradecast: TestGradecast;

  beforeAll(async () => {
    nats = await startNatsServer();
    gradecast = await startGradecast(nats.url);
    await gradecast.server.streamReady;
  });

  afterAll(async () => {
    await gradecast?.cleanup();
    await nats?.cleanup();
  });

  it("a request over the max message size is RESOURCE_EXHAUSTED", async () => {
    expect(gradecast.config.maxMessageBytes).toBe(1024 * 1024);
    const error = await refusal(
      gradecast,
      sampleScoreData({ submissionId: 1n, scoreMsg: "x".repeat(1_500_000) }),
    );
    expect(error.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(error.violations).toEqual([]);
  });

  it.each([
    { name: "an invalid wire type", body: Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]) },
    { name: "a length prefix past the end", body: Buffer.from([0x0a, 0x64, 0x08, 0x01]) },
    { name: "a truncated varint", body: Buffer.from([0x0a, 0x02, 0x28, 0xff]) },
  ])("bytes that are no SubmitScoreRequest ($name) are INTERNAL", async ({ body }) => {
    const { error } = await callRaw(gradecast.address, SUBMIT_SCORE_PATH, body);
    expect(error?.code).toBe(status.INTERNAL);
    expect(error?.details).toMatch(/deserializing request/);
  });

  it("an empty body decodes to a request without score_data: INVALID_ARGUMENT", async () => {
    const { error } = await callRaw(gradecast.address, SUBMIT_SCORE_PATH, Buffer.alloc(0));
    expect(error?.code).toBe(status.INVALID_ARGUMENT);
    expect(error?.details).toBe("invalid request: score_data required");
  });

  it("invalid UTF-8 in an id is INVALID_ARGUMENT naming the field, not stored as U+FFFD", async () => {
    const encoded = Buffer.from(
      SubmitScoreRequest.encode({
        scoreData: sampleScoreData({ submissionId: 2n, userId: "user-@@-x" }),
      }).finish(),
    );
    // Swap the two placeholder bytes for a byte sequence that is not UTF-8.
    const at = encoded.indexOf("@@");
    encoded[at] = 0xff;
    encoded[at + 1] = 0xfe;
    const { error } = await callRaw(gradecast.address, SUBMIT_SCORE_PATH, encoded);
    expect(error?.code).toBe(status.INVALID_ARGUMENT);
    expect(error?.details).toMatch(/score_data\.user_id must not contain U\+FFFD/);
  });

  it("an unknown method is UNIMPLEMENTED", async () => {
    const { error } = await callRaw(
      gradecast.address,
      "/gradecast.v1.ScoreService/Nope",
      Buffer.alloc(0),
    );
    expect(error?.code).toBe(status.UNIMPLEMENTED);
  });

  it("still stores and publishes a valid score afterwards, and nothing before it", async () => {
    expect(storeCounts(sqlitePath(gradecast.config)).scores).toBe(0);
    const scoreData = sampleScoreData({ submissionId: 7001n });
    const submitted = await gradecast.client.submitScore(scoreData);
    expect(submitted.replayed).toBe(false);
    expect(submitted.published).toBe(true);

    const found = await gradecast.client.getScore(7001n);
    expect(found.event?.metadata?.id).toBe(submitted.eventId);
    expect(found.event?.scoreData).toEqual(scoreData);
    expect(storeCounts(sqlitePath(gradecast.config)).scores).toBe(1);
    const messages = await readStream(nats.url, gradecast.config.stream.name);
    expect(messages.map((m) => m.headers["ce-id"])).toEqual([submitted.eventId]);
    expect(decodeScoreEvent(messages[0]?.data ?? new Uint8Array()).scoreData).toEqual(scoreData);
  });
});
