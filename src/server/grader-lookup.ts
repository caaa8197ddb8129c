import type { Grader } from "./grader-credentials.js";
import { type LegacyCheckOptions, LegacyTokenCheck } from "./legacy-token-check.js";

/**
 * The graders of one load of the credentials file, indexed once so that finding a token's
 * grader is one map lookup, whatever the number of graders: by the SHA-256 of its token (for
 * `sha256$` hashes) and by name (for mutual TLS). Graders with a legacy scrypt hash are left to
 * {@link LegacyTokenCheck}. Immutable: a reload builds a new lookup, so nothing remembered
 * survives it.
 */
export class GraderLookup {
  readonly #byDigest = new Map<string, Grader>();
  readonly #byName = new Map<string, Grader>();
  /** The check of tokens without the prefix against legacy hashes. */
  readonly legacy: LegacyTokenCheck;

  constructor(graders: readonly Grader[], legacyOptions: LegacyCheckOptions) {
    for (const grader of graders) {
      this.#byName.set(grader.name, grader);
      if (grader.tokenHash.kind === "sha256") this.#byDigest.set(grader.tokenHash.digest, grader);
    }
    this.legacy = new LegacyTokenCheck(graders, legacyOptions);
  }

  /** How many graders were loaded. */
  get graderCount(): number {
    return this.#byName.size;
  }

  /**
   * The grader whose stored SHA-256 is `digest` (hex). A map lookup, not a constant-time
   * comparison: what its timing could reveal is how a stranger's digest compares with the
   * stored ones, and knowing part of a SHA-256 does not help to find a token that has it.
   */
  graderWithDigest(digest: string): Grader | undefined {
    return this.#byDigest.get(digest);
  }

  /** The grader of that name (a client certificate's CN under mutual TLS). */
  graderNamed(name: string): Grader | undefined {
    return this.#byName.get(name);
  }

  /** This load was replaced: stop legacy checks of it after the scrypt under way. */
  close(): void {
    this.legacy.close();
  }
}
