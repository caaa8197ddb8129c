import { randomBytes } from "node:crypto";
import { userInfo } from "node:os";
import pg from "pg";

/**
 * The PostgreSQL server the tests use: the one on 127.0.0.1:5432 (`.ci/run`
 * installs and starts it when missing), or GRADECAST_TEST_POSTGRES_URL.
 */
export const POSTGRES_ADMIN_URL =
  process.env.GRADECAST_TEST_POSTGRES_URL ?? "postgres://127.0.0.1:5432/test";

/** A fresh database of its own for one test or suite; `drop()` removes it. */
export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** Creates an empty database named `gradecast_test_<random>` next to the admin one. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `gradecast_test_${randomBytes(6).toString("hex")}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    // FORCE: a test that failed half-way may leave connections open.
    drop: () => adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

/** Runs one query on a database with a short-lived connection. */
export async function queryDatabase<R extends pg.QueryResultRow>(
  url: string,
  text: string,
  values?: unknown[],
): Promise<R[]> {
  const client = new pg.Client({ connectionString: withUser(url) });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** An open connection to a database, for a test that holds a lock or a transaction; `end()` it. */
export async function connectToDatabase(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: withUser(url) });
  await client.connect();
  return client;
}

/** Like psql, connect as the operating-system user when the URL names none. */
function withUser(url: string): string {
  const parsed = new URL(url);
  if (!parsed.username) parsed.username = userInfo().username;
  return parsed.toString();
}

async function adminQuery(text: string): Promise<void> {
  await queryDatabase(POSTGRES_ADMIN_URL, text);
}
