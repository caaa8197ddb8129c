import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { z } from "zod";
import { isValidQueueName } from "../contract/index.js";
import { parseTokenDigest } from "./grader-tokens.js";
import { parseScryptHash, type ScryptTokenHash, scryptHashText } from "./legacy-token-hash.js";

/**
 * The credentials file, as stored: per grader, a hash of its token (never the token) and the
 * queues it may report for. Tokens made by `gradecast credentials add` are stored as their
 * SHA-256 (`sha256$<hex>`); files written before keep their scrypt hashes
 * (`scrypt$N$r$p$<salt>$<hash>`), which still work until the grader's token is rotated.
 *
 * ```json
 * { "graders": { "python-grader-1": { "tokenHash": "sha256$<64 hex digits>", "queues": ["python-grader", "java-*"] } } }
 * ```
 */
export interface CredentialsFile {
  graders: Record<string, { tokenHash: string; queues: string[] }>;
}

/** How a grader's token is stored: its SHA-256 (hex), or a legacy scrypt hash. */
export type TokenHash = { kind: "sha256"; digest: string } | ScryptTokenHash;

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

/** Grader names become the last part of the event `source`: keep them plain. */
export const GRADER_NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/** An exact queue name, or a prefix of one followed by `*`. */

/** Parses a stored token hash, `sha256$<hex>` or a legacy `scrypt$...`; undefined when neither. */
export function parseTokenHash(text: string): TokenHash | undefined {
  const digest = parseTokenDigest(text);
  if (digest !== undefined) return { kind: "sha256", digest };
  return parseScryptHash(text);
}

/** The stored text of a token hash: what {@link parseTokenHash} reads back. */
export function tokenHashText(tokenHash: TokenHash): string {
  return tokenHash.kind === "sha256" ? `sha256$${tokenHash.digest}` : scryptHashText(tokenHash);
}

/** Whether `pattern` is an exact queue name or `prefix*`. */
export function isQueuePattern(pattern: string): boolean {
  // A trailing `*` always makes a prefix pattern, even where a queue's own name ends in `*`.
  const name = pattern.endsWith("*") ? pattern.slice(0, -1) : pattern;
  return isValidQueueName(name);
}

/** Whether a queue matches one of the patterns: equal to it, or starting with a `prefix*`'s prefix. */
export function queueMatches(patterns: readonly string[], queueName: string): boolean {
  return patterns.some((pattern) =>
    pattern.endsWith("*") ? queueName.startsWith(pattern.slice(0, -1)) : pattern === queueName,
  );
}

const TOKEN_HASH_FORM = "sha256$<64 hex digits> (or a legacy scrypt$N$r$p$<salt>$<hash>)";

/** The credentials file's schema; parsing it also parses each token hash. */
const credentialsFileSchema = z.object(
  {
    graders: z.record(
      z.string().regex(GRADER_NAME_PATTERN),
      z.object(
        {
          tokenHash: z
            .string({ error: `needs a "tokenHash" of the form ${TOKEN_HASH_FORM}` })
            .transform((text, context): TokenHash => {
              const tokenHash = parseTokenHash(text);
              if (tokenHash) return tokenHash;
              context.addIssue({
                code: "custom",
                message: `must be of the form ${TOKEN_HASH_FORM}`,
              });
              return z.NEVER;
            }),
          queues: z.array(
            z
              .string({ error: "must be a queue name or a prefix* pattern" })
              .refine(isQueuePattern, { error: "must be a queue name or a prefix* pattern" }),
            { error: 'needs "queues": a list of queue names or prefix* patterns' },
          ),
        },
        { error: 'must be an object with "tokenHash" and "queues"' },
      ),
      { error: 'must be an object with a "graders" object' },
    ),
  },
  { error: 'must be an object with a "graders" object' },
);

/** Most schema violations one error lists; the rest are counted. */
const MAX_LISTED_VIOLATIONS = 5;

/**
 * Checks the shape of a parsed credentials file and returns its graders. A file that breaks
 * the schema is refused with every violation, each named by its path (`graders.g1.queues[0]`).
 */
export function gradersOf(path: string, text: string): Grader[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new CredentialsFileError(path, "is not JSON", { cause: error });
  }
  const result = credentialsFileSchema.safeParse(parsed);
  if (!result.success) {
    const violations = result.error.issues.map(describeIssue);
    const more = violations.length - MAX_LISTED_VIOLATIONS;
    throw new CredentialsFileError(
      path,
      violations.slice(0, MAX_LISTED_VIOLATIONS).join("; ") +
        (more > 0 ? `; and ${more} more` : ""),
      { cause: result.error },
    );
  }
  const named = Object.entries(result.data.graders).map(
    ([name, entry]): Grader => ({ name, tokenHash: entry.tokenHash, queues: entry.queues }),
  );
  refuseSharedDigests(path, named);
  return named;
}

/** One schema violation on one line: where (the JSON path) and what is wrong. */
function describeIssue(issue: z.core.$ZodIssue): string {
  const where = jsonPath(issue.path);
  if (issue.code === "invalid_key") {
    const name = String(issue.path[issue.path.length - 1]);
    return `${where}: grader name ${JSON.stringify(name)} must be 1-64 characters of A-Z a-z 0-9 . _ -`;
  }
  return where === "" ? issue.message : `${where}: ${issue.message}`;
}

/** `graders.g1.queues[0]`, with a key that is not a plain identifier quoted: `graders["a.b"]`. */
function jsonPath(path: readonly PropertyKey[]): string {
  return path
    .map((key, index) => {
      if (typeof key === "number") return `[${key}]`;
      const text = String(key);
      if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(text)) return index === 0 ? text : `.${text}`;
      return `[${JSON.stringify(text)}]`;
    })
    .join("");
}

/** Two graders holding one token would make the token's grader ambiguous: refuse the file. */
function refuseSharedDigests(path: string, graders: readonly Grader[]): void {
  const holders = new Map<string, string>();
  for (const grader of graders) {
    if (grader.tokenHash.kind !== "sha256") continue;
    const other = holders.get(grader.tokenHash.digest);
    if (other !== undefined) {
      throw new CredentialsFileError(
        path,
        `graders ${JSON.stringify(other)} and ${JSON.stringify(grader.name)} have the same "tokenHash": each grader needs its own token`,
      );
    }
    holders.set(grader.tokenHash.digest, grader.name);
  }
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
        { tokenHash: tokenHashText(grader.tokenHash), queues: [...grader.queues] },
      ]),
    ),
  };
}

/**
 * Writes the file with mode 0600: to a temp file in the same directory, then
 * renamed over the old one, so a reader (a SIGHUP reload) never sees half a file.
 * A missing directory (and its missing parents) is created with mode 0700: only
 * this user may list or add files next to the credentials.
 */
export async function writeCredentialsFile(path: string, file: CredentialsFile): Promise<void> {
  const temp = join(dirname(path), `.${randomBytes(6).toString("hex")}.credentials.tmp`);
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await writeFile(temp, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, flag: "wx" });
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw new CredentialsFileError(path, `cannot be written (${errorCode(error)})`, {
      cause: error,
    });
  }
}

function errorCode(error: unknown): string {
  return error instanceof Error && "code" in error ? String(error.code) : String(error);
}
