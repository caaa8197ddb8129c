import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createScoreClient, type ScoreClient } from "../../src/client/index.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import { pollUntil } from "../helpers/gradecast.js";
import { type GradecastProcess, startGradecastProcess } from "../helpers/gradecast-process.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";
import {
  connectToDatabase,
  createTestDatabase,
  queryDatabase,
  type TestDatabase,
} from "../helpers/postgres.js";

let nats: NatsServerHandle;
let database: TestDatabase;
let dir: string;
let child: GradecastProcess | undefined;
let client: ScoreClient | undefined;

beforeAll(async () => {
  [nats, database] = await Promise.all([startNatsServer(), createTestDatabase()]);
  dir = await mkdtemp(join(tmpdir(), "gradecast-pg-loss-"));
});

afterAll(async () => {
  client?.close();
  await child?.kill9();
  await nats?.cleanup();
  await database?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The backends of gradecast's pool that wait for a lock: its transactions blocked mid-way. */
function blockedGradecastBackends(): Promise<{ pid: number }[]> {
  return queryDatabase<{ pid: number }>(
    database.url,
    `SELECT pid FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = 'gradecast'
        AND wait_event_type = 'Lock'`,
  );
}

describe("a PostgreSQL connection dropped in the middle of a transaction", () => {
  it("fails that call with UNAVAILABLE, does not crash the process, and the next call commits", async () => {
    child = await startGradecastProcess({
      natsUrl: nats.url,
      dataDir: dir,
      stream: "GRADECAST_PG_LOSS",
      extraArgs: ["--store", database.url],
    });
    client = createScoreClient(child.address, { deadlineMs: 60_000 });
    expect(await client.submitScore(sampleScoreData({ submissionId: 1n }))).toMatchObject({
      replayed: false,
    });

    // Hold the scores table so the next commit stops inside its transaction, then drop the
    // connection that runs it.
    const holder = await connectToDatabase(database.url);
    let call: Promise<{ code: number | undefined }>;
    try {
      await holder.query("BEGIN");
      await holder.query("LOCK TABLE scores IN ACCESS EXCLUSIVE MODE");
      call = client.submitScore(sampleScoreData({ submissionId: 2n })).then(
        () => ({ code: status.OK }),
        (error: { code?: number }) => ({ code: error.code }),
      );
      const blocked = await pollUntil(
        blockedGradecastBackends,
        (backends) => backends.length > 0,
        30_000,
      );
      expect(blocked.length).toBeGreaterThan(0);
      const terminated = await queryDatabase<{ done: boolean }>(
        database.url,
        "SELECT pg_terminate_backend(pid) AS done FROM unnest($1::integer[]) AS pid",
        [blocked.map((backend) => backend.pid)],
      );
      expect(terminated.every((row) => row.done)).toBe(true);
    } finally {
      await holder.query("ROLLBACK");
      await holder.end();
    }
    expect(await call).toEqual({ code: status.UNAVAILABLE });

    // Still serving, with a fresh connection: nothing of the failed call was stored.
    const next = await client.submitScore(sampleScoreData({ submissionId: 3n }));
    expect(next).toMatchObject({ replayed: false, submissionSequence: 1 });
    const stored = await queryDatabase<{ id: string }>(
      database.url,
      "SELECT submission_id::text AS id FROM scores ORDER BY submission_id",
    );
    expect(stored.map((row) => row.id)).toEqual(["1", "3"]);
    expect(await child.stop(60_000)).toEqual({ code: 0, signal: null });
  });
});
