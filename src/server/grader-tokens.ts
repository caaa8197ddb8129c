import { createHash, randomBytes } from "node:crypto";

/**
 * Every token `gradecast credentials add` makes starts with this, so secret scanners (and
 * people) recognize a leaked one, and the server knows at a glance that it is never a legacy
 * token: such a token is looked up by its SHA-256 and never reaches scrypt.
 */
export const TOKEN_PREFIX = "gradecast_";

/** 32 random bytes: a guess succeeds with probability 2^-256, so a fast digest is safe to store. */
const TOKEN_BYTES = 32;

/** The shape of a token `generateToken` makes: the prefix, then 43 characters of base64url. */
const TOKEN_PATTERN = /^gradecast_[A-Za-z0-9_-]{43}$/;

/** How a stored SHA-256 digest of a token is written in the credentials file. */
const DIGEST_PATTERN = /^sha256\$([0-9a-f]{64})$/;

/** A new random token: `gradecast_` and 32 random bytes in base64url (53 characters). */
export function generateToken(): string {
  return `${TOKEN_PREFIX}${randomBytes(TOKEN_BYTES).toString("base64url")}`;
}

/** Whether a token carries the prefix: then only a digest lookup decides, never scrypt. */
export function hasTokenPrefix(token: string): boolean {
  return token.startsWith(TOKEN_PREFIX);
}

/** Whether a token has the exact shape of one `generateToken` makes. */
export function isWellFormedToken(token: string): boolean {
  return TOKEN_PATTERN.test(token);
}

/**
 * The SHA-256 of a token, hex: what the credentials file stores and the key a token is looked
 * up by. Unsalted on purpose: salt and a slow hash protect guessable passwords, and a 256-bit
 * random token cannot be guessed; a digest lets a refusal cost one hash and one map lookup.
 */
export function tokenDigest(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** The stored form of a token: `sha256$<64 hex digits>`. */
export function hashToken(token: string): string {
  return `sha256$${tokenDigest(token)}`;
}

/** The hex digest of a stored `sha256$<hex>`; undefined when the text is not one. */
export function parseTokenDigest(text: string): string | undefined {
  return DIGEST_PATTERN.exec(text)?.[1];
}
