import { randomBytes, scrypt } from "node:crypto";

/**
 * A token as `gradecast credentials add` made them before the `gradecast_` prefix: 32 random
 * bytes, base64url (43 characters).
 */
export function legacyToken(): string {
  return randomBytes(32).toString("base64url");
}

/**
 * The scrypt hash of a token exactly as `gradecast credentials add` wrote it before tokens were
 * stored as SHA-256 (`scrypt$16384$8$1$<salt b64>$<hash b64>`, 16-byte salt, 32-byte hash): what
 * existing credentials files hold.
 */
export function legacyScryptHash(token: string): Promise<string> {
  const salt = randomBytes(16);
  return new Promise((resolve, reject) => {
    scrypt(token, salt, 32, { N: 16_384, r: 8, p: 1 }, (error, hash) =>
      error
        ? reject(error)
        : resolve(
            ["scrypt", 16_384, 8, 1, salt.toString("base64"), hash.toString("base64")].join("$"),
          ),
    );
  });
}
