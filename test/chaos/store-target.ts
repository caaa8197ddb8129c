import { createTestDatabase } from "../helpers/postgres.js";
import type { ChaosStoreKind } from "./chaos-options.js";

/** The store of one campaign, as `gradecast serve` flags, and how to remove it afterwards. */
export interface StoreTarget {
  readonly kind: ChaosStoreKind;
  /** Flags for `serve` on top of `--data-dir` (SQLite needs none: it lives in the data dir). */
  readonly serveArgs: readonly string[];
  drop(): Promise<void>;
}

/**
 * SQLite: the file `serve` makes in its `--data-dir`, which the campaign removes with the dir.
 * PostgreSQL: a fresh database of its own on the test server (127.0.0.1:5432, or
 * GRADECAST_TEST_POSTGRES_URL), dropped afterwards.
 */
export async function prepareStore(kind: ChaosStoreKind): Promise<StoreTarget> {
  if (kind === "sqlite") return { kind, serveArgs: [], drop: async () => {} };
  const database = await createTestDatabase();
  return { kind, serveArgs: ["--store", database.url], drop: () => database.drop() };
}
