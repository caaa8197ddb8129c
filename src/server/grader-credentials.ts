import { createHash, randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";

/**
 * The credentials file, as stored: per grader, the scrypt hash of its token
 * (never the token) and the queues it may report for.
 *
 * ```json
 * { "graders": { "python-grader-1": { "tokenHash": "scrypt$16384$8$1$<salt>$<hash>", "queues": ["python-grader", "java-*"] } } }
 * ```
 */
export interface CredentialsFile {
  graders: Record<string, { tokenHash: string; queues: string[] }>;
}

/** The parameters and output of one scrypt hash of a token. */
export interface TokenHash {
  cost: number;
  blockSize: number;
  parallelization: number;
  salt: Buffer;
  hash: Buffer;
}

/** A grader allowed to report scores, as loaded from the credentials file. */
export interface Grader {
  name: string;
  tokenHash: TokenHash;
  /** Exact queue names and `prefix*` patterns. */
  queues: readonly string[];
}

/** The credentials file is unreadable or not in the expected shape. */
export class CredentialsFileError extends Error {
  constructor(path: string, problem: string, options?: { cause?: unknown }) {
    super(`credentials file ${JSON.stringify(path)}: ${problem}`, options);
    this.name = "CredentialsFileError";
  }
}

/** Parameters of new hashes: scrypt's recommended interactive cost (~50 ms, 16 MiB). */
const NEW_HASH = { cost: 16_384, blockSize: 8, parallelization: 1, saltBytes: 16, hashBytes: 32 };
/** Upper bounds on the parameters read from a file, so an edited file cannot exhaust memory. */
const MAX_COST = 2 ** 20;
const MAX_BLOCK_SIZE = 32;
const MAX_PARALLELIZATION = 16;
const TOKEN_BYTES = 32;

/** Grader names become the last part of the event `source`: keep them plain. */
export const GRADER_NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/** An exact queue name, or a prefix of one followed by `*`. */
const QUEUE_PATTERN = /^[A-Za-z0-9_-]{1,128}$|^[A-Za-z0-9_-]{1,127}\*$/;

/** A new random token: 32 bytes, base64url. */
export function generateToken(): string {
  return randomBytes(TOKEN_BYTES).toString("base64url");
}

/** Hashes a token with scrypt and a random salt: `scrypt$N$r$p$<salt b64>$<hash b64>`. */
export async function hashToken(token: string): Promise<string> {
  const salt = randomBytes(NEW_HASH.saltBytes);
  const hash = await scryptAsync(token, salt, NEW_HASH.hashBytes, {
    N: NEW_HASH.cost,
    r: NEW_HASH.blockSize,
    p: NEW_HASH.parallelization,
  });
  return [
    "scrypt",
    NEW_HASH.cost,
    NEW_HASH.blockSize,
    NEW_HASH.parallelization,
    salt.toString("base64"),
    hash.toString("base64"),
  ].join("$");
}

/** Parses a stored `scrypt$N$r$p$salt$hash`; undefined when it is not one (or out of bounds). */
export function parseTokenHash(text: string): TokenHash | undefined {
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
  const base64 = /^[A-Za-z0-9+/]+={0,2}$/;
  if (!base64.test(salt) || !base64.test(hash)) return undefined;
  const hashBytes = Buffer.from(hash, "base64");
  if (hashBytes.length < 16) return undefined;
  return { cost, blockSize, parallelization, salt: Buffer.from(salt, "base64"), hash: hashBytes };
}

/** Whether `token` hashes to `stored`; compared in constant time. */
export async function isTokenOf(token: string, stored: TokenHash): Promise<boolean> {
  const computed = await scryptAsync(token, stored.salt, stored.hash.length, {
    N: stored.cost,
    r: stored.blockSize,
    p: stored.parallelization,
    // scrypt needs 128 * N * r bytes; Node's default cap (32 MiB) would refuse larger parameters.
    maxmem: 256 * stored.cost * stored.blockSize + 1024 * 1024,
  });
  return timingSafeEqual(computed, stored.hash);
}

/** The SHA-256 of a token, hex: the key under which a verified token is remembered. */
export function tokenDigest(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** Whether `pattern` is an exact queue name or `prefix*`. */
export function isQueuePattern(pattern: string): boolean {
  return QUEUE_PATTERN.test(pattern);
}

/** Whether a queue matches one of the patterns: equal to it, or starting with a `prefix*`'s prefix. */
export function queueMatches(patterns: readonly string[], queueName: string): boolean {
  return patterns.some((pattern) =>
    pattern.endsWith("*") ? queueName.startsWith(pattern.slice(0, -1)) : pattern === queueName,
  );
}

/** Checks the shape of a parsed credentials file and returns its graders. */
export function gradersOf(path: string, text: string): Grader[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new CredentialsFileError(path, "is not JSON", { cause: error });
  }
  const graders = isRecord(parsed) ? parsed.graders : undefined;
  if (!isRecord(graders)) {
    throw new CredentialsFileError(path, 'must be an object with a "graders" object');
  }
  return Object.entries(graders).map(([name, entry]) => {
    if (!GRADER_NAME_PATTERN.test(name)) {
      throw new CredentialsFileError(
        path,
        `grader name ${JSON.stringify(name)} must be 1-64 characters of A-Z a-z 0-9 . _ -`,
      );
    }
    const tokenHash =
      isRecord(entry) && typeof entry.tokenHash === "string"
        ? parseTokenHash(entry.tokenHash)
        : undefined;
    if (!isRecord(entry) || !tokenHash) {
      throw new CredentialsFileError(
        path,
        `grader ${JSON.stringify(name)} needs a "tokenHash" of the form scrypt$N$r$p$<salt>$<hash>`,
      );
    }
    const queues = entry.queues;
    if (
      !Array.isArray(queues) ||
      !queues.every((queue): queue is string => typeof queue === "string" && isQueuePattern(queue))
    ) {
      throw new CredentialsFileError(
        path,
        `grader ${JSON.stringify(name)} needs "queues": a list of queue names or prefix* patterns`,
      );
    }
    return { name, tokenHash, queues };
  });
}

/** Reads and checks the credentials file (async: used on SIGHUP while serving). */
export async function loadGraders(path: string): Promise<Grader[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new CredentialsFileError(path, `cannot be read (${errorCode(error)})`, { cause: error });
  }
  return gradersOf(path, text);
}

/** Reads and checks the credentials file once, synchronously (configuration at start). */
export function loadGradersSync(path: string): Grader[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new CredentialsFileError(path, `cannot be read (${errorCode(error)})`, { cause: error });
  }
  return gradersOf(path, text);
}

/** The file as stored; an empty one when it does not exist yet. */
export async function readCredentialsFile(path: string): Promise<CredentialsFile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if (errorCode(error) === "ENOENT") return { graders: {} };
    throw new CredentialsFileError(path, `cannot be read (${errorCode(error)})`, { cause: error });
  }
  const graders = gradersOf(path, text);
  return {
    graders: Object.fromEntries(
      graders.map((grader) => [
        grader.name,
        { tokenHash: storedHashText(grader.tokenHash), queues: [...grader.queues] },
      ]),
    ),
  };
}

/**
 * Writes the file with mode 0600: to a temp file in the same directory, then
 * renamed over the old one, so a reader (a SIGHUP reload) never sees half a file.
 */
export async function writeCredentialsFile(path: string, file: CredentialsFile): Promise<void> {
  const temp = join(dirname(path), `.${randomBytes(6).toString("hex")}.credentials.tmp`);
  try {
    await writeFile(temp, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, flag: "wx" });
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw new CredentialsFileError(path, `cannot be written (${errorCode(error)})`, {
      cause: error,
    });
  }
}

function storedHashText(tokenHash: TokenHash): string {
  return [
    "scrypt",
    tokenHash.cost,
    tokenHash.blockSize,
    tokenHash.parallelization,
    tokenHash.salt.toString("base64"),
    tokenHash.hash.toString("base64"),
  ].join("$");
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

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function errorCode(error: unknown): string {
  return error instanceof Error && "code" in error ? String(error.code) : String(error);
}
