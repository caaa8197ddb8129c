import { GradecastError } from "../contract/index.js";
import type { Grader } from "./grader-credentials.js";
import { isTokenOfScrypt, type ScryptTokenHash } from "./legacy-token-hash.js";

/** How a token is checked against one scrypt hash. */
export type LegacyVerifier = (token: string, stored: ScryptTokenHash) => Promise<boolean>;

/** Bounds of the legacy check; see {@link LegacyTokenCheck}. */
export interface LegacyCheckOptions {
  /** Most legacy checks queued (running or waiting) at once; more get UNAVAILABLE at once. */
  maxQueued: number;
  /** Most refused tokens remembered (by SHA-256); the oldest is forgotten first. */
  maxRefusedRemembered: number;
  /** Checks a token against one scrypt hash (tests pass one that counts or blocks). */
  verify: LegacyVerifier;
}

/** 32 queued checks are up to 32 × graders × ~50 ms of waiting: a retry is cheaper. */
export const DEFAULT_LEGACY_CHECK_OPTIONS: Readonly<LegacyCheckOptions> = Object.freeze({
  maxQueued: 32,
  // A digest and its Set entry are about 150 bytes: at most ~1.5 MB.
  maxRefusedRemembered: 10_000,
  verify: isTokenOfScrypt,
});

/** The defaults with `options` laid over them. */
export function makeLegacyCheckOptions(
  options: Partial<LegacyCheckOptions> = {},
): LegacyCheckOptions {
  return { ...DEFAULT_LEGACY_CHECK_OPTIONS, ...options };
}

/** Too many tokens without the `gradecast_` prefix are waiting for a legacy (scrypt) check. */
export class LegacyChecksBusyError extends GradecastError {
  constructor(maxQueued: number) {
    super(
      "unavailable",
      `${maxQueued} legacy token checks are already queued; retry later (tokens from \`gradecast credentials add\` start with gradecast_ and never wait)`,
    );
    this.name = "LegacyChecksBusyError";
  }
}

/**
 * Checks tokens without the `gradecast_` prefix against the graders whose tokens are stored as
 * legacy scrypt hashes, for one load of the credentials file. Such a token names no grader, so
 * it is tried against each of them: graders × ~50 ms of CPU. What bounds a stranger's cost:
 * checks run one at a time (so at most one scrypt, on one thread, however many calls come), at
 * most `maxQueued` are queued (the rest are refused at once with UNAVAILABLE, which a client
 * retries), the same token asked for again while it is checked shares the check, and a refused
 * token is remembered (bounded) so a client retrying a wrong token costs one check. A verified
 * token is remembered by its SHA-256: one entry per grader, whose later calls skip scrypt.
 * Built anew on every load of the file, so a reload forgets everything this remembered.
 */
export class LegacyTokenCheck {
  readonly #graders: readonly { grader: Grader; hash: ScryptTokenHash }[];
  readonly #options: LegacyCheckOptions;
  /** SHA-256 (hex) of a verified token → its grader. */
  readonly #verified = new Map<string, Grader>();
  /** SHA-256 (hex) of refused tokens, oldest first. */
  readonly #refused = new Set<string>();
  /** Checks queued or running, by token SHA-256, so concurrent calls with one token share one. */
  readonly #pending = new Map<string, Promise<Grader | undefined>>();
  #queueTail: Promise<unknown> = Promise.resolve();
  #queued = 0;
  #scryptRuns = 0;
  #isClosed = false;

  constructor(graders: readonly Grader[], options: LegacyCheckOptions) {
    this.#graders = graders.flatMap((grader) =>
      grader.tokenHash.kind === "scrypt" ? [{ grader, hash: grader.tokenHash }] : [],
    );
    this.#options = options;
  }

  /** How many graders have a legacy hash; 0 means a token without the prefix is refused at once. */
  get graderCount(): number {
    return this.#graders.length;
  }

  /** How many scrypt hashes were computed so far (one per grader tried per checked token). */
  get scryptRuns(): number {
    return this.#scryptRuns;
  }

  /**
   * The grader whose legacy hash `token` matches, undefined when none does. `digest` is the
   * token's SHA-256 (hex). Throws {@link LegacyChecksBusyError} when the queue is full.
   */
  async graderOf(token: string, digest: string): Promise<Grader | undefined> {
    const verified = this.#verified.get(digest);
    if (verified) return verified;
    if (this.#refused.has(digest) || this.#graders.length === 0) return undefined;
    const pending = this.#pending.get(digest);
    if (pending) return pending;
    if (this.#queued >= this.#options.maxQueued) {
      throw new LegacyChecksBusyError(this.#options.maxQueued);
    }
    const check = this.#enqueue(() => this.#check(token));
    this.#pending.set(digest, check);
    try {
      const grader = await check;
      if (grader) this.#verified.set(digest, grader);
      else this.#rememberRefused(digest);
      return grader;
    } finally {
      this.#pending.delete(digest);
    }
  }

  /**
   * Stops after the scrypt under way (a reload replaced these graders): queued checks answer
   * undefined without running, and the caller asks the new graders instead.
   */
  close(): void {
    this.#isClosed = true;
  }

  /** Runs `work` after every check queued before it: one check at a time. */
  #enqueue<T>(work: () => Promise<T>): Promise<T> {
    this.#queued += 1;
    const run = this.#queueTail.then(work).finally(() => {
      this.#queued -= 1;
    });
    this.#queueTail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  async #check(token: string): Promise<Grader | undefined> {
    for (const { grader, hash } of this.#graders) {
      if (this.#isClosed) return undefined;
      this.#scryptRuns += 1;
      if (await this.#options.verify(token, hash)) return grader;
    }
    return undefined;
  }

  #rememberRefused(digest: string): void {
    if (this.#options.maxRefusedRemembered <= 0) return;
    if (this.#refused.size >= this.#options.maxRefusedRemembered) {
      const oldest = this.#refused.values().next();
      if (!oldest.done) this.#refused.delete(oldest.value);
    }
    this.#refused.add(digest);
  }
}
