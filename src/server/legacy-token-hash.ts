import { type ScryptOptions, scrypt, timingSafeEqual } from "node:crypto";

/**
 * A legacy token hash: scrypt with its parameters and a salt, as `gradecast credentials add`
 * wrote them before tokens had the `gradecast_` prefix. Still accepted, so existing files keep
 * working, but each check costs about 50 ms of CPU and 16 MiB; `credentials add NAME --replace`
 * rotates such a grader to a token stored as a SHA-256 digest.
 */
export interface ScryptTokenHash {
  kind: "scrypt";
  cost: number;
  blockSize: number;
  parallelization: number;
  salt: Buffer;
  hash: Buffer;
}

/** Upper bounds on the parameters read from a file, so an edited file cannot exhaust memory. */
const MAX_COST = 2 ** 20;
const MAX_BLOCK_SIZE = 32;
const MAX_PARALLELIZATION = 16;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Parses a stored `scrypt$N$r$p$salt$hash`; undefined when it is not one (or out of bounds). */
export function parseScryptHash(text: string): ScryptTokenHash | undefined {
  const parts = text.split("$");
  const [scheme, n, r, p, salt, hash] = parts;
  if (parts.length !== 6 || scheme !== "scrypt" || salt === undefined || hash === undefined) {
    return undefined;
  }
  const cost = Number(n);
  const blockSize = Number(r);
  const parallelization = Number(p);
  const isPowerOfTwo = Number.isInteger(Math.log2(cost)) && cost > 1;
  if (
    !isPowerOfTwo ||
    cost > MAX_COST ||
    !Number.isInteger(blockSize) ||
    blockSize < 1 ||
    blockSize > MAX_BLOCK_SIZE ||
    !Number.isInteger(parallelization) ||
    parallelization < 1 ||
    parallelization > MAX_PARALLELIZATION
  ) {
    return undefined;
  }
  if (!BASE64.test(salt) || !BASE64.test(hash)) return undefined;
  const hashBytes = Buffer.from(hash, "base64");
  if (hashBytes.length < 16) return undefined;
  return {
    kind: "scrypt",
    cost,
    blockSize,
    parallelization,
    salt: Buffer.from(salt, "base64"),
    hash: hashBytes,
  };
}

/** The stored text of a legacy hash, as it was read (`scrypt$N$r$p$<salt b64>$<hash b64>`). */
export function scryptHashText(stored: ScryptTokenHash): string {
  return [
    "scrypt",
    stored.cost,
    stored.blockSize,
    stored.parallelization,
    stored.salt.toString("base64"),
    stored.hash.toString("base64"),
  ].join("$");
}

/** Whether `token` hashes to `stored` under scrypt; compared in constant time. Slow by design. */
export async function isTokenOfScrypt(token: string, stored: ScryptTokenHash): Promise<boolean> {
  const computed = await scryptAsync(token, stored.salt, stored.hash.length, {
    N: stored.cost,
    r: stored.blockSize,
    p: stored.parallelization,
    // scrypt needs 128 * N * r bytes; Node's default cap (32 MiB) would refuse larger parameters.
    maxmem: 256 * stored.cost * stored.blockSize + 1024 * 1024,
  });
  return timingSafeEqual(computed, stored.hash);
}

function scryptAsync(
  token: string,
  salt: Buffer,
  keyLength: number,
  options: ScryptOptions,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(token, salt, keyLength, options, (error, derived) =>
      error ? reject(error) : resolve(derived),
    );
  });
}
