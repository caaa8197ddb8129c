import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  CredentialsFileError,
  type Grader,
  gradersOf,
  isQueuePattern,
  parseTokenHash,
  queueMatches,
  readCredentialsFile,
  writeCredentialsFile,
} from "../../src/server/grader-credentials.js";
import {
  generateToken,
  hashToken,
  isWellFormedToken,
  TOKEN_PREFIX,
} from "../../src/server/grader-tokens.js";
import { legacyGradersOf, rotationCommand } from "../../src/server/legacy-migration.js";
import { isTokenOfScrypt } from "../../src/server/legacy-token-hash.js";
import { legacyScryptHash, legacyToken } from "../helpers/legacy-credentials.js";

const sha256Hex = (text: string) => createHash("sha256").update(text).digest("hex");

describe("tokens", () => {
  it("are gradecast_ and 32 random bytes in base64url, a different one each time", () => {
    const token = generateToken();
    expect(TOKEN_PREFIX).toBe("gradecast_");
    expect(token).toMatch(/^gradecast_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token.slice(TOKEN_PREFIX.length), "base64url")).toHaveLength(32);
    expect(isWellFormedToken(token)).toBe(true);
    expect(generateToken()).not.toBe(token);
  });

  it.each([
    ["a legacy token without the prefix", legacyToken()],
    ["the prefix with a short secret", "gradecast_abc"],
    ["the prefix with a secret one character too long", `${generateToken()}A`],
    ["the prefix with a '.' in the secret", `gradecast_${"a".repeat(42)}.`],
  ])("%s is not a well-formed token", (_case, token) => {
    expect(isWellFormedToken(token)).toBe(false);
  });

  it("are stored as sha256$ and the hex SHA-256 of the token, never the token", () => {
    const token = generateToken();
    const stored = hashToken(token);
    expect(stored).toBe(`sha256$${sha256Hex(token)}`);
    expect(stored).not.toContain(token.slice(TOKEN_PREFIX.length));
    expect(parseTokenHash(stored)).toEqual({ kind: "sha256", digest: sha256Hex(token) });
  });
});

describe("legacy scrypt hashes", () => {
  it("are still read, and verify only the token they were made from", async () => {
    const token = legacyToken();
    const stored = await legacyScryptHash(token);
    const parsed = parseTokenHash(stored);
    expect(parsed).toMatchObject({
      kind: "scrypt",
      cost: 16_384,
      blockSize: 8,
      parallelization: 1,
    });
    if (parsed?.kind !== "scrypt") return;
    expect(await isTokenOfScrypt(token, parsed)).toBe(true);
    expect(await isTokenOfScrypt(`${token}x`, parsed)).toBe(false);
    expect(await isTokenOfScrypt(legacyToken(), parsed)).toBe(false);
  });
});

describe("stored token hashes", () => {
  it.each([
    ["another scheme", "bcrypt$16384$8$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA=="],
    ["a sha256 digest one hex digit short", `sha256$${"a".repeat(63)}`],
    ["a sha256 digest in upper case", `sha256$${"A".repeat(64)}`],
    ["a sha256 digest in base64", `sha256$${Buffer.alloc(32, 7).toString("base64")}`],
    [
      "a scrypt cost that is not a power of two",
      "scrypt$1000$8$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==",
    ],
    ["a scrypt cost above 2^20", "scrypt$2097152$8$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA=="],
    ["a scrypt block size of 0", "scrypt$16384$0$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA=="],
    ["a scrypt parallelization above 16", "scrypt$16384$8$17$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA=="],
    ["a scrypt hash that is not base64", "scrypt$16384$8$1$c2FsdA==$not base64!"],
    ["a scrypt hash under 16 bytes", "scrypt$16384$8$1$c2FsdA==$aGFzaA=="],
    ["too few scrypt parts", "scrypt$16384$8$1$c2FsdA=="],
  ])("refuses %s", (_case, text) => {
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
    ["java-*-x", true],
    ["MITx-42.*", true],
    ["py thon", true],
    [" python", false],
    ["python\u0001", false],
    ["", false],
  ])("%j is a queue pattern: %s", (pattern, isValid) => {
    expect(isQueuePattern(pattern)).toBe(isValid);
  });
});

describe("the credentials file", () => {
  const legacyHash =
    "scrypt$16384$8$1$c2FsdHNhbHRzYWx0c2FsdA==$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g=";
  const digestHash = `sha256$${"ab".repeat(32)}`;

  it("reads graders with their queues, SHA-256 and legacy scrypt hashes alike", () => {
    const graders = gradersOf(
      "c.json",
      JSON.stringify({
        graders: {
          "g-1": { tokenHash: digestHash, queues: ["q", "java-*"] },
          "g-old": { tokenHash: legacyHash, queues: ["q"] },
        },
      }),
    );
    expect(graders.map((g) => [g.name, g.tokenHash.kind, g.queues])).toEqual([
      ["g-1", "sha256", ["q", "java-*"]],
      ["g-old", "scrypt", ["q"]],
    ]);
    expect(legacyGradersOf(graders).map((g) => g.name)).toEqual(["g-old"]);
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
      JSON.stringify({ graders: { g: { tokenHash: digestHash, queues: ["*"] } } }),
      "queues",
    ],
    [
      "two graders with the same token",
      JSON.stringify({
        graders: {
          a: { tokenHash: digestHash, queues: ["q"] },
          b: { tokenHash: digestHash, queues: ["q"] },
        },
      }),
      'graders "a" and "b" have the same "tokenHash"',
    ],
  ])("refuses %s, naming the problem", (_case, text, problem) => {
    expect(() => gradersOf("c.json", text)).toThrow(CredentialsFileError);
    expect(() => gradersOf("c.json", text)).toThrow(problem);
  });

  it("names every violation at once, each by the path of the bad field", () => {
    const text = JSON.stringify({
      graders: {
        "g.1": { tokenHash: "md5$abc", queues: ["q"] },
        g2: { tokenHash: digestHash, queues: ["ok", "*", 7] },
        g3: "not an object",
        "bad/name": { tokenHash: digestHash, queues: ["q"] },
      },
    });
    let caught: unknown;
    try {
      gradersOf("c.json", text);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(CredentialsFileError);
    const problems = (caught as Error).message.replace(/^credentials file "c\.json": /, "");
    expect(problems.split("; ").sort()).toEqual(
      [
        'graders["bad/name"]: grader name "bad/name" must be 1-64 characters of A-Z a-z 0-9 . _ -',
        'graders["g.1"].tokenHash: must be of the form sha256$<64 hex digits> (or a legacy scrypt$N$r$p$<salt>$<hash>)',
        "graders.g2.queues[1]: must be a queue name or a prefix* pattern",
        "graders.g2.queues[2]: must be a queue name or a prefix* pattern",
        'graders.g3: must be an object with "tokenHash" and "queues"',
      ].sort(),
    );
  });

  it("is written back with every hash as it was read, legacy ones included", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gradecast-credentials-"));
    try {
      const path = join(dir, "credentials.json");
      const graders = {
        "g-1": { tokenHash: digestHash, queues: ["q"] },
        "g-old": { tokenHash: await legacyScryptHash(legacyToken()), queues: ["java-*"] },
      };
      await writeFile(path, JSON.stringify({ graders }));
      const file = await readCredentialsFile(path);
      expect(file.graders).toEqual(graders);
      await writeCredentialsFile(path, file);
      expect(JSON.parse(await readFile(path, "utf8")).graders).toEqual(graders);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("moving off legacy hashes", () => {
  const grader = (name: string, queues: string[]): Grader => ({
    name,
    queues,
    tokenHash: { kind: "sha256", digest: "0".repeat(64) },
  });

  it("spells the rotation command with the grader's queues, quoted for a shell", () => {
    expect(rotationCommand(grader("python-1", ["python-grader"]), "/etc/gradecast/c.json")).toBe(
      "gradecast credentials add python-1 --queues python-grader --replace --credentials /etc/gradecast/c.json",
    );
    expect(rotationCommand(grader("java", ["java-*", "jdk"]), "/srv/my creds/it's.json")).toBe(
      `gradecast credentials add java --queues 'java-*,jdk' --replace --credentials '/srv/my creds/it'\\''s.json'`,
    );
  });
});
