import type { Metadata } from "@grpc/grpc-js";
import { PermissionDeniedError, UnauthenticatedError } from "../contract/index.js";
import { type Grader, isTokenOf, queueMatches, tokenDigest } from "./grader-credentials.js";

const BEARER = /^Bearer +([A-Za-z0-9._~+/=-]+)$/i;

/**
 * Who is calling, from the `authorization: Bearer <token>` metadata (or, under
 * mutual TLS, the client certificate's subject), and which queues they may
 * report for. Verified tokens are remembered by their SHA-256,
 * so only a token's first call pays for scrypt; replacing the graders forgets them.
 */
export class GraderAuthenticator {
  #graders: readonly Grader[];
  /** SHA-256 (hex) of a verified token → its grader's name; at most one entry per grader. */
  readonly #verified = new Map<string, string>();
  /** Bumped on every replace, so a verification against the old graders is not remembered. */
  #generation = 0;

  constructor(graders: readonly Grader[]) {
    this.#graders = graders;
  }

  /** How many graders are loaded. */
  get graderCount(): number {
    return this.#graders.length;
  }

  /** Swaps in reloaded graders; tokens verified before must be verified again. */
  replace(graders: readonly Grader[]): void {
    this.#graders = graders;
    this.#verified.clear();
    this.#generation += 1;
  }

  /**
   * The grader whose token the call carries; UnauthenticatedError when there is none.
   * Under mutual TLS a call without a token may instead be named by its client
   * certificate: `certificateName` is the verified certificate's subject CN, and
   * it must be a grader's name in the credentials file.
   */
  async authenticate(metadata: Metadata, certificateName?: string): Promise<Grader> {
    if (certificateName !== undefined && metadata.get("authorization").length === 0) {
      const named = this.#graders.find((grader) => grader.name === certificateName);
      if (!named) {
        throw new UnauthenticatedError(
          `the client certificate names ${JSON.stringify(certificateName)}, which is not a grader in the credentials file`,
        );
      }
      return named;
    }
    const token = bearerTokenOf(metadata);
    const digest = tokenDigest(token);
    for (;;) {
      const generation = this.#generation;
      const graders = this.#graders;
      const knownName = this.#verified.get(digest);
      const known = knownName === undefined ? undefined : graders.find((g) => g.name === knownName);
      if (known) return known;
      const grader = await findGraderOf(token, graders);
      // Graders reloaded meanwhile: the answer may be stale (a revoked token); ask again.
      if (generation !== this.#generation) continue;
      if (!grader) throw new UnauthenticatedError("the token is not valid");
      this.#verified.set(digest, grader.name);
      return grader;
    }
  }

  /** Throws PermissionDeniedError unless `grader` may report scores for `queueName`. */
  authorize(grader: Grader, queueName: string): void {
    if (!queueMatches(grader.queues, queueName)) {
      throw new PermissionDeniedError(grader.name, queueName);
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

/** Checks the token against every grader's hash (each has its own salt). */
async function findGraderOf(
  token: string,
  graders: readonly Grader[],
): Promise<Grader | undefined> {
  const matches = await Promise.all(graders.map((grader) => isTokenOf(token, grader.tokenHash)));
  return graders[matches.indexOf(true)];
}
