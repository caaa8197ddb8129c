import type { Metadata } from "@grpc/grpc-js";
import { PermissionDeniedError, UnauthenticatedError } from "../contract/index.js";
import { type Grader, queueMatches } from "./grader-credentials.js";
import { GraderLookup } from "./grader-lookup.js";
import { hasTokenPrefix, isWellFormedToken, tokenDigest } from "./grader-tokens.js";
import { type LegacyCheckOptions, makeLegacyCheckOptions } from "./legacy-token-check.js";

const BEARER = /^Bearer +([A-Za-z0-9._~+/=-]+)$/i;

/** Options of {@link GraderAuthenticator}. */
export interface GraderAuthOptions {
  /** Bounds of the check of tokens without the `gradecast_` prefix against legacy hashes. */
  legacy?: Partial<LegacyCheckOptions>;
}

/**
 * Who is calling, from the `authorization: Bearer <token>` metadata (or, under mutual TLS, the
 * client certificate's subject), and which queues they may report for.
 *
 * Refusing a stranger must cost far less than serving a grader, whatever the number of
 * graders. A token with the `gradecast_` prefix is decided by one SHA-256 and one map lookup
 * (about a microsecond): unknown means refused, and it never reaches scrypt. Only a token
 * without the prefix, while some grader still has a legacy scrypt hash, goes to
 * {@link LegacyTokenCheck}, which runs one check at a time, queues a bounded number and
 * remembers its answers; without legacy hashes such a token is refused as cheaply.
 */
export class GraderAuthenticator {
  #lookup: GraderLookup;
  readonly #legacyOptions: LegacyCheckOptions;

  constructor(graders: readonly Grader[], options: GraderAuthOptions = {}) {
    this.#legacyOptions = makeLegacyCheckOptions(options.legacy);
    this.#lookup = new GraderLookup(graders, this.#legacyOptions);
  }

  /** How many graders are loaded. */
  get graderCount(): number {
    return this.#lookup.graderCount;
  }

  /** How many scrypt hashes legacy checks computed since the graders were last replaced. */
  get legacyScryptRuns(): number {
    return this.#lookup.legacy.scryptRuns;
  }

  /** Swaps in reloaded graders; whatever was remembered about tokens is forgotten. */
  replace(graders: readonly Grader[]): void {
    const replaced = this.#lookup;
    this.#lookup = new GraderLookup(graders, this.#legacyOptions);
    replaced.close();
  }

  /**
   * The grader whose token the call carries; UnauthenticatedError when there is none.
   * Under mutual TLS a call without a token may instead be named by its client
   * certificate: `certificateName` is the verified certificate's subject CN, and
   * it must be a grader's name in the credentials file.
   */
  async authenticate(metadata: Metadata, certificateName?: string): Promise<Grader> {
    if (certificateName !== undefined && metadata.get("authorization").length === 0) {
      const named = this.#lookup.graderNamed(certificateName);
      if (!named) {
        throw new UnauthenticatedError(
          `the client certificate names ${JSON.stringify(certificateName)}, which is not a grader in the credentials file`,
        );
      }
      return named;
    }
    const token = bearerTokenOf(metadata);
    if (hasTokenPrefix(token)) {
      const grader = isWellFormedToken(token)
        ? this.#lookup.graderWithDigest(tokenDigest(token))
        : undefined;
      if (!grader) throw new UnauthenticatedError("the token is not valid");
      return grader;
    }
    return this.#graderOfLegacyToken(token);
  }

  /** Whether `grader` may report (and read) scores of `queueName`. */
  mayReportFor(grader: Grader, queueName: string): boolean {
    return queueMatches(grader.queues, queueName);
  }

  /** Throws PermissionDeniedError unless `grader` may report scores for `queueName`. */
  authorize(grader: Grader, queueName: string): void {
    if (!this.mayReportFor(grader, queueName)) {
      throw new PermissionDeniedError(grader.name, queueName);
    }
  }

  async #graderOfLegacyToken(token: string): Promise<Grader> {
    const digest = tokenDigest(token);
    for (;;) {
      const lookup = this.#lookup;
      const grader = await lookup.legacy.graderOf(token, digest);
      // Graders reloaded meanwhile: the answer may be stale (a revoked token); ask again.
      if (lookup !== this.#lookup) continue;
      if (!grader) throw new UnauthenticatedError("the token is not valid");
      return grader;
    }
  }
}

/** The token of the single `authorization: Bearer <token>` header. */
function bearerTokenOf(metadata: Metadata): string {
  const values = metadata.get("authorization");
  if (values.length === 0) {
    throw new UnauthenticatedError("missing authorization metadata: send `Bearer <token>`");
  }
  const value = values[0];
  const token = values.length === 1 && typeof value === "string" ? BEARER.exec(value)?.[1] : null;
  if (!token) {
    throw new UnauthenticatedError("malformed authorization metadata: expected `Bearer <token>`");
  }
  return token;
}
