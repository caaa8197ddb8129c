import { Metadata } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { PermissionDeniedError, UnauthenticatedError } from "../../src/contract/index.js";
import { GraderAuthenticator } from "../../src/server/grader-auth.js";
import {
  CredentialsFileError,
  type Grader,
  generateToken,
  gradersOf,
  hashToken,
  isQueuePattern,
  isTokenOf,
  parseTokenHash,
  queueMatches,
} from "../../src/server/grader-credentials.js";

/** A grader with a fresh token; the token is returned beside it. */
async function graderWithToken(name: string, queues: string[]): Promise<[Grader, string]> {
  const token = generateToken();
  const tokenHash = parseTokenHash(await hashToken(token));
  if (!tokenHash) throw new Error("hashToken wrote a hash parseTokenHash refuses");
  return [{ name, tokenHash, queues }, token];
}

function bearer(value: string | undefined): Metadata {
  const metadata = new Metadata();
  if (value !== undefined) metadata.set("authorization", value);
  return metadata;
}

describe("token hashing", () => {
  it("makes 32-byte base64url tokens, a different one each time", () => {
    const token = generateToken();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(generateToken()).not.toBe(token);
  });

  it("stores scrypt parameters, salt and hash, and verifies only the token it was made from", async () => {
    const token = generateToken();
    const stored = await hashToken(token);
    expect(stored).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(stored).not.toContain(token);
    const parsed = parseTokenHash(stored);
    expect(parsed).toBeDefined();
    if (!parsed) return;
    expect(await isTokenOf(token, parsed)).toBe(true);
    expect(await isTokenOf(`${token}x`, parsed)).toBe(false);
    expect(await isTokenOf(generateToken(), parsed)).toBe(false);
  });

  it("salts each hash: the same token hashes differently twice", async () => {
    const token = generateToken();
    expect(await hashToken(token)).not.toBe(await hashToken(token));
  });

  it.each([
    ["another scheme", "bcrypt$16384$8$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA=="],
    ["a cost that is not a power of two", "scrypt$1000$8$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA=="],
    ["a cost above 2^20", "scrypt$2097152$8$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA=="],
    ["a block size of 0", "scrypt$16384$0$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA=="],
    ["a parallelization above 16", "scrypt$16384$8$17$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA=="],
    ["a hash that is not base64", "scrypt$16384$8$1$c2FsdA==$not base64!"],
    ["a hash under 16 bytes", "scrypt$16384$8$1$c2FsdA==$aGFzaA=="],
    ["too few parts", "scrypt$16384$8$1$c2FsdA=="],
  ])("refuses a stored hash with %s", (_case, text) => {
    expect(parseTokenHash(text)).toBeUndefined();
  });
});

describe("queue patterns", () => {
  it.each<[string[], string, boolean]>([
    [["python-grader"], "python-grader", true],
    [["python-grader"], "python-grader-2", false],
    [["java-*"], "java-8", true],
    [["java-*"], "java-", true],
    [["java-*"], "java", false],
    [["java-*"], "javascript", false],
    [["python-grader", "java-*"], "java-17", true],
    [[], "python-grader", false],
  ])("%j allows queue %j: %s", (patterns, queueName, isAllowed) => {
    expect(queueMatches(patterns, queueName)).toBe(isAllowed);
  });

  it.each<[string, boolean]>([
    ["python-grader", true],
    ["java-*", true],
    ["java*", true],
    ["*", false],
    ["java-*-x", false],
    ["java.*", false],
    ["py thon", false],
    ["", false],
  ])("%j is a queue pattern: %s", (pattern, isValid) => {
    expect(isQueuePattern(pattern)).toBe(isValid);
  });
});

describe("the credentials file", () => {
  const hash =
    "scrypt$16384$8$1$c2FsdHNhbHRzYWx0c2FsdA==$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g=";

  it("reads graders with their queues", () => {
    const graders = gradersOf(
      "c.json",
      JSON.stringify({ graders: { "g-1": { tokenHash: hash, queues: ["q", "java-*"] } } }),
    );
    expect(graders.map((g) => [g.name, g.queues])).toEqual([["g-1", ["q", "java-*"]]]);
  });

  it.each([
    ["text that is not JSON", "{", "is not JSON"],
    ["no graders object", "{}", '"graders" object'],
    ["a grader name with a slash", JSON.stringify({ graders: { "a/b": {} } }), "grader name"],
    [
      "a plain-text token",
      JSON.stringify({ graders: { g: { token: "secret", queues: ["q"] } } }),
      "tokenHash",
    ],
    [
      "a queue that is no pattern",
      JSON.stringify({ graders: { g: { tokenHash: hash, queues: ["*"] } } }),
      "queues",
    ],
  ])("refuses %s, naming the problem", (_case, text, problem) => {
    expect(() => gradersOf("c.json", text)).toThrow(CredentialsFileError);
    expect(() => gradersOf("c.json", text)).toThrow(problem);
  });
});

describe("GraderAuthenticator", () => {
  it.each([
    ["no authorization header", undefined],
    ["another scheme", "Token x"],
    ["a bearer header without a token", "Bearer"],
    ["a token no grader holds", `Bearer ${generateToken()}`],
  ])("refuses %s as unauthenticated", async (_case, header) => {
    const [grader] = await graderWithToken("g", ["q"]);
    const authenticator = new GraderAuthenticator([grader]);
    await expect(authenticator.authenticate(bearer(header))).rejects.toThrow(UnauthenticatedError);
  });

  it("finds the grader of a token, authorizes its queues and refuses others", async () => {
    const [python, pythonToken] = await graderWithToken("python-1", ["python-grader"]);
    const [java, javaToken] = await graderWithToken("java-1", ["java-*"]);
    const authenticator = new GraderAuthenticator([python, java]);
    const found = await authenticator.authenticate(bearer(`Bearer ${javaToken}`));
    expect(found.name).toBe("java-1");
    expect(() => authenticator.authorize(found, "java-11")).not.toThrow();
    expect(() => authenticator.authorize(found, "python-grader")).toThrow(PermissionDeniedError);
    expect((await authenticator.authenticate(bearer(`bearer ${pythonToken}`))).name).toBe(
      "python-1",
    );
  });

  it("forgets remembered tokens when the graders are replaced", async () => {
    const [kept, keptToken] = await graderWithToken("kept", ["q"]);
    const [revoked, revokedToken] = await graderWithToken("revoked", ["q"]);
    const authenticator = new GraderAuthenticator([kept, revoked]);
    expect((await authenticator.authenticate(bearer(`Bearer ${revokedToken}`))).name).toBe(
      "revoked",
    );
    authenticator.replace([kept]);
    await expect(authenticator.authenticate(bearer(`Bearer ${revokedToken}`))).rejects.toThrow(
      UnauthenticatedError,
    );
    expect((await authenticator.authenticate(bearer(`Bearer ${keptToken}`))).name).toBe("kept");
  });
});
