import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PostgresStore, SqliteStore, type Store } from "../../src/store/index.js";
import { runTsxScript } from "../helpers/child-process.js";
import { createTestDatabase, queryDatabase, type TestDatabase } from "../helpers/postgres.js";

// README, Scale-out: "An instance refuses to start on a database whose schema is newer than it
// knows." A newer gradecast migrated it; this one must neither run on it nor touch it.

const encoding = {
  origin: { source: "test", sourcehost: "h", sourcelib: "0.1.0" },
  subjectPrefix: "gradecast",
};
/** A serve that does not exit is killed after this, and fails its test. */
const SERVE_TIMEOUT_MS = 60_000;

let dir: string;
let database: TestDatabase;

beforeAll(async () => {
  [dir, database] = await Promise.all([
    mkdtemp(join(tmpdir(), "gradecast-newer-schema-")),
    createTestDatabase(),
  ]);
});

afterAll(async () => {
  await database?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A store at today's schema, then marked as migrated further by a newer gradecast. */
interface NewerStore {
  /** `--store` of `gradecast serve`. */
  location: string;
  open(): Store;
  query(sql: string): Promise<unknown[]>;
}

const stores: Array<[string, () => NewerStore]> = [
  [
    "SQLite",
    () => {
      const path = join(dir, "gradecast.sqlite");
      return {
        location: path,
        open: () => new SqliteStore({ path, encoding }),
        query: async (sql) => {
          const db = new Database(path);
          try {
            const statement = db.prepare(sql);
            return statement.reader ? statement.all() : [statement.run()];
          } finally {
            db.close();
          }
        },
      };
    },
  ],
  [
    "PostgreSQL",
    () => ({
      location: database.url,
      open: () => new PostgresStore({ url: database.url, encoding, poolSize: 1 }),
      query: (sql) => queryDatabase(database.url, sql),
    }),
  ],
];

describe("gradecast serve on a store whose schema is newer than it knows", () => {
  it.each(stores)(
    "%s: exits 1 naming the versions, and changes nothing",
    async (_name, makeStore) => {
      const target = makeStore();
      const store = target.open();
      await store.start();
      await store.close();
      await target.query("INSERT INTO schema_version (version, applied_at_ms) VALUES (99, 0)");
      const versionsBefore = await target.query(
        "SELECT count(*) AS n FROM schema_version WHERE version < 99",
      );

      const run = await runTsxScript(
        "src/cli/run.ts",
        [
          "serve",
          "--store",
          target.location,
          "--insecure-no-auth",
          "--listen",
          "127.0.0.1:0",
          "--metrics-listen",
          "off",
          // Never reached: the store is opened first.
          "--nats-url",
          "nats://127.0.0.1:1",
          "--log-level",
          "error",
        ],
        { timeoutMs: SERVE_TIMEOUT_MS, killSignal: "SIGKILL" },
      );
      expect({ code: run.code, signal: run.signal }).toEqual({ code: 1, signal: null });
      const problem = run.stderr.split("\n").filter((line) => line.includes("schema version"));
      expect(problem).toEqual([
        expect.stringMatching(
          /^gradecast: cannot open .* schema version 99, newer than this gradecast knows \(\d+\)$/,
        ),
      ]);
      expect(await target.query("SELECT max(version) AS v FROM schema_version")).toEqual([
        { v: 99 },
      ]);
      expect(
        await target.query("SELECT count(*) AS n FROM schema_version WHERE version < 99"),
      ).toEqual(versionsBefore);
    },
  );
});
