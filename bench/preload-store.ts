// `bench --preload N`: fills the store with N scores and their published outbox rows before
// `serve` opens it, so a run measures SubmitScore against a store that already holds a history.
import { stat } from "node:fs/promises";
import { hostname, userInfo } from "node:os";
import { newEventId } from "../src/contract/index.js";
import { type NewScore, PostgresStore, SqliteStore, type Store } from "../src/store/index.js";
import { gradecastVersion } from "../src/version.js";
import type { Progress } from "./run-bench.js";
import { benchScoreData } from "./score-request.js";

/** Scores per transaction: one commit (and fsync) per thousand scores. */
const PRELOAD_BATCH_SCORES = 1_000;
/** Every this many submissions gets a regrade (its second score), as graders sometimes send. */
const REGRADE_EVERY = 20;

/** Where the bench's store is: a SQLite file or a PostgreSQL URL, as `serve --store` takes it. */
export type StoreLocation = { kind: "sqlite"; path: string } | { kind: "postgres"; url: string };

/** The store `serve --store <value>` opens. */
export function storeLocationOf(value: string): StoreLocation {
  return /^postgres(ql)?:/i.test(value)
    ? { kind: "postgres", url: value }
    : { kind: "sqlite", path: value };
}

/** What preloading did. */
export interface PreloadFigures {
  scores: number;
  /** Distinct submissions among them (the rest are regrades). */
  submissions: number;
  durationS: number;
}

/**
 * Records `count` scores through the Store API, as `serve` would have: the bench's realistic
 * score (2 KB score_msg, Open edX ids) for submissions 1, 2, ... (the run's own ids start far
 * above), every 20th regraded once, each event marked published. Runs in the bench process
 * before `serve` starts on the same store; reports progress about every 10%.
 */
export async function preloadStore(
  location: StoreLocation,
  count: number,
  progress: Progress,
): Promise<PreloadFigures> {
  const startedAt = performance.now();
  // The origin serve stamps on events by default, so the rows look like its own.
  const encoding = {
    origin: {
      source: "openedx/gradecast/grpc",
      sourcehost: hostname(),
      sourcelib: gradecastVersion(),
    },
    subjectPrefix: "gradecast",
  };
  const store: Store =
    location.kind === "sqlite"
      ? new SqliteStore({ path: location.path, encoding })
      : new PostgresStore({ url: location.url, encoding, poolSize: 2 });
  await store.start();
  let recorded = 0;
  let submissions = 0;
  let nextReport = count / 10;
  try {
    while (recorded < count) {
      const batch: NewScore[] = [];
      while (batch.length < Math.min(PRELOAD_BATCH_SCORES, count - recorded)) {
        submissions += 1;
        batch.push(preloadScore(submissions, 7));
        if (submissions % REGRADE_EVERY === 0 && batch.length < count - recorded) {
          batch.push(preloadScore(submissions, 9));
        }
      }
      const outcomes = await store.recordScores(batch, 0);
      const published = outcomes.flatMap((outcome) =>
        outcome.kind === "accepted" ? [outcome.record.eventId] : [],
      );
      if (published.length !== batch.length) {
        throw new Error(
          `preload: ${batch.length - published.length} of ${batch.length} scores were not accepted (is the store empty?)`,
        );
      }
      await store.markPublished(
        published.map((eventId, index) => ({ eventId, streamSequence: recorded + index + 1 })),
      );
      recorded += batch.length;
      if (recorded >= nextReport || recorded === count) {
        const elapsedS = (performance.now() - startedAt) / 1000;
        progress(
          `preload: ${recorded} of ${count} scores (${Math.round((recorded * 100) / count)}%), ${Math.round(recorded / elapsedS)}/s`,
        );
        nextReport += count / 10;
      }
    }
  } finally {
    await store.close();
  }
  return {
    scores: recorded,
    submissions,
    durationS: Math.round(performance.now() - startedAt) / 1000,
  };
}

function preloadScore(submissionId: number, pointsEarned: number): NewScore {
  return {
    scoreData: { ...benchScoreData(submissionId), pointsEarned },
    eventId: newEventId(),
    time: new Date(),
  };
}

/**
 * What the store takes on disk: the SQLite file and its WAL, or the PostgreSQL `scores` and
 * `outbox` tables with their indexes and TOAST (`pg_total_relation_size`).
 */
export async function storeSizeBytes(location: StoreLocation): Promise<number> {
  if (location.kind === "sqlite") {
    const sizes = await Promise.all(
      [location.path, `${location.path}-wal`].map((path) =>
        stat(path).then(
          (stats) => stats.size,
          () => 0,
        ),
      ),
    );
    return sizes.reduce((sum, size) => sum + size, 0);
  }
  const { default: pg } = await import("pg");
  // As serve does (libpq's habit): the operating-system user when the URL names none.
  const url = new URL(location.url);
  if (!url.username) url.username = userInfo().username;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const result = await client.query<{ bytes: string }>(
      `SELECT (coalesce(pg_total_relation_size(to_regclass('scores')), 0)
             + coalesce(pg_total_relation_size(to_regclass('outbox')), 0))::text AS bytes`,
    );
    return Number(result.rows[0]?.bytes ?? 0);
  } finally {
    await client.end();
  }
}
