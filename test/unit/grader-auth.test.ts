import { Metadata } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { PermissionDeniedError, UnauthenticatedError } from "../../src/contract/index.js";
import { GraderAuthenticator } from "../../src/server/grader-auth.js";
import { type Grader, parseTokenHash } from "../../src/server/grader-credentials.js";
import { generateToken, hashToken, tokenDigest } from "../../src/server/grader-tokens.js";
import {
  LegacyChecksBusyError,
  LegacyTokenCheck,
  type LegacyVerifier,
  makeLegacyCheckOptions,
} from "../../src/server/legacy-token-check.js";
import type { ScryptTokenHash } from "../../src/server/legacy-token-hash.js";
import { legacyScryptHash, legacyToken } from "../helpers/legacy-credentials.js";

/** A grader with a new `gradecast_` token; the token is returned beside it. */
function graderWithToken(name: string, queues: string[]): [Grader, string] {
  const token = generateToken();
  const tokenHash = parseTokenHash(hashToken(token));
  if (!tokenHash) throw new Error("hashToken wrote a hash parseTokenHash refuses");
  return [{ name, tokenHash, queues }, token];
}

/** A grader with a real legacy scrypt hash (~50 ms to make and to check). */
async function legacyGraderWithToken(name: string, queues: string[]): Promise<[Grader, string]> {
  const token = legacyToken();
  const tokenHash = parseTokenHash(await legacyScryptHash(token));
  if (tokenHash?.kind !== "scrypt") throw new Error("the legacy helper wrote no scrypt hash");
  return [{ name, tokenHash, queues }, token];
}

/**
 * A grader whose "scrypt hash" is a stand-in for {@link fakeVerifier}: the salt holds the token,
 * so tests can count, block and release checks without paying for scrypt.
 */
function fakeLegacyGrader(name: string): [Grader, string] {
  const token = legacyToken();
  const tokenHash: ScryptTokenHash = {
    kind: "scrypt",
    cost: 16_384,
    blockSize: 8,
    parallelization: 1,
    salt: Buffer.from(token),
    hash: Buffer.alloc(32),
  };
  return [{ name, tokenHash, queues: ["q"] }, token];
}

/**
 * A verifier for {@link fakeLegacyGrader}s that counts its calls, knows how many run at once,
 * and, when `isGated`, holds each check until the test releases it.
 */
function fakeVerifier(isGated: boolean) {
  const state = { calls: 0, running: 0, maxRunning: 0, held: [] as (() => void)[] };
  const verify: LegacyVerifier = async (token, stored) => {
    state.calls += 1;
    state.running += 1;
    state.maxRunning = Math.max(state.maxRunning, state.running);
    if (isGated) await new Promise<void>((release) => state.held.push(release));
    state.running -= 1;
    return stored.salt.toString() === token;
  };
  /** Releases the oldest held check. */
  const releaseOne = () => state.held.shift()?.();
  return { state, verify, releaseOne };
}

/** Resolves once `condition` holds; fails after `timeoutMs` (generous: this only waits on promises). */
async function waitUntil(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Metadata with one `authorization` entry per value (none for undefined). */
function bearer(value: string | readonly string[] | undefined): Metadata {
  const metadata = new Metadata();
  for (const each of value === undefined ? [] : [value].flat()) {
    metadata.add("authorization", each);
  }
  return metadata;
}

/** The error `authenticate` rejects with (fails the test if it resolves). */
async function refusalOf(answer: Promise<Grader>): Promise<unknown> {
  return answer.then(
    (grader) => {
      throw new Error(`expected a refusal, got grader ${grader.name}`);
    },
    (error: unknown) => error,
  );
}

const MISSING = "missing authorization metadata: send `Bearer <token>`";
const MALFORMED = "malformed authorization metadata: expected `Bearer <token>`";
const NOT_VALID = "the token is not valid";

describe("GraderAuthenticator", () => {
  it.each<[string, (graderToken: string) => string | string[] | undefined, string]>([
    ["no authorization header", () => undefined, MISSING],
    ["another scheme", () => "Token x", MALFORMED],
    ["a bearer header without a token", () => "Bearer", MALFORMED],
    [
      "a grader's token after another scheme ending in Bearer",
      (t) => `Basic Bearer ${t}`,
      MALFORMED,
    ],
    ["a grader's token followed by more text", (t) => `Bearer ${t} extra`, MALFORMED],
    [
      "a grader's token in two authorization headers",
      (t) => [`Bearer ${t}`, `Bearer ${t}`],
      MALFORMED,
    ],
    ["a gradecast_ token no grader holds", () => `Bearer ${generateToken()}`, NOT_VALID],
    ["a gradecast_ token of the wrong length", () => `Bearer ${generateToken()}x`, NOT_VALID],
    [
      "a token without the prefix, and no grader with a legacy hash",
      () => `Bearer ${legacyToken()}`,
      NOT_VALID,
    ],
  ])("refuses %s as unauthenticated, saying why", async (_case, header, message) => {
    const [grader, token] = graderWithToken("g", ["q"]);
    const authenticator = new GraderAuthenticator([grader]);
    const refusal = await refusalOf(authenticator.authenticate(bearer(header(token))));
    expect(refusal).toBeInstanceOf(UnauthenticatedError);
    expect(refusal).toMatchObject({ code: "unauthenticated", message });
  });

  it("refuses a token without the prefix that no legacy grader holds, saying the token is not valid", async () => {
    const [legacy] = fakeLegacyGrader("legacy");
    const { verify } = fakeVerifier(false);
    const authenticator = new GraderAuthenticator([legacy], { legacy: { verify } });
    const refusal = await refusalOf(authenticator.authenticate(bearer(`Bearer ${legacyToken()}`)));
    expect(refusal).toBeInstanceOf(UnauthenticatedError);
    expect(refusal).toMatchObject({ message: NOT_VALID });
  });

  it("accepts a token after any number of spaces, whatever the case of Bearer", async () => {
    const [grader, token] = graderWithToken("g", ["q"]);
    const authenticator = new GraderAuthenticator([grader]);
    for (const header of [`Bearer ${token}`, `Bearer   ${token}`, `BEARER ${token}`]) {
      expect((await authenticator.authenticate(bearer(header))).name).toBe("g");
    }
  });

  it("counts the graders it holds, and the graders that replaced them", () => {
    const graders = ["a", "b", "c"].map((name) => graderWithToken(name, ["q"])[0]);
    const authenticator = new GraderAuthenticator(graders);
    expect(authenticator.graderCount).toBe(3);
    authenticator.replace(graders.slice(0, 1));
    expect(authenticator.graderCount).toBe(1);
  });

  it("finds the grader of a token, authorizes its queues and refuses others", async () => {
    const [python, pythonToken] = graderWithToken("python-1", ["python-grader"]);
    const [java, javaToken] = graderWithToken("java-1", ["java-*"]);
    const authenticator = new GraderAuthenticator([python, java]);
    const found = await authenticator.authenticate(bearer(`Bearer ${javaToken}`));
    expect(found.name).toBe("java-1");
    expect(() => authenticator.authorize(found, "java-11")).not.toThrow();
    expect(() => authenticator.authorize(found, "python-grader")).toThrow(PermissionDeniedError);
    expect((await authenticator.authenticate(bearer(`bearer ${pythonToken}`))).name).toBe(
      "python-1",
    );
  });

  it("names a call without a token by its client certificate's CN, which must be a grader", async () => {
    const [python] = graderWithToken("python-1", ["python-grader"]);
    const authenticator = new GraderAuthenticator([python]);
    expect((await authenticator.authenticate(bearer(undefined), "python-1")).name).toBe("python-1");
    const refusal = await refusalOf(authenticator.authenticate(bearer(undefined), "stranger"));
    expect(refusal).toBeInstanceOf(UnauthenticatedError);
    expect(refusal).toMatchObject({
      message:
        'the client certificate names "stranger", which is not a grader in the credentials file',
    });
  });

  it.each([
    ["a certificate naming another grader", "python-1"],
    ["a certificate naming no grader", "stranger"],
  ])("names a call with both a token and %s by its token", async (_case, certificateName) => {
    const [python] = graderWithToken("python-1", ["python-grader"]);
    const [java, javaToken] = graderWithToken("java-1", ["java-*"]);
    const authenticator = new GraderAuthenticator([python, java]);
    const found = await authenticator.authenticate(bearer(`Bearer ${javaToken}`), certificateName);
    expect(found.name).toBe("java-1");
  });

  it("refuses a call with a certificate and a malformed token instead of using the certificate", async () => {
    const [python] = graderWithToken("python-1", ["python-grader"]);
    const authenticator = new GraderAuthenticator([python]);
    const refusal = await refusalOf(authenticator.authenticate(bearer("Token x"), "python-1"));
    expect(refusal).toMatchObject({ message: MALFORMED });
  });

  it("forgets everything it remembered when the graders are replaced", async () => {
    const [kept, keptToken] = graderWithToken("kept", ["q"]);
    const [revoked, revokedToken] = graderWithToken("revoked", ["q"]);
    const [legacy, legacyTokenValue] = fakeLegacyGrader("legacy");
    const [legacyRevoked, legacyRevokedToken] = fakeLegacyGrader("legacy-revoked");
    const { state, verify } = fakeVerifier(false);
    const authenticator = new GraderAuthenticator([kept, revoked, legacy, legacyRevoked], {
      legacy: { verify },
    });
    for (const token of [revokedToken, legacyTokenValue, legacyRevokedToken]) {
      await authenticator.authenticate(bearer(`Bearer ${token}`));
    }
    await authenticator.authenticate(bearer(`Bearer ${legacyTokenValue}`));
    const checksBeforeReload = state.calls;
    // legacy: 1 check; legacy-revoked: 2 (each legacy grader tried in turn); then remembered.
    expect(checksBeforeReload).toBe(3);

    authenticator.replace([kept, legacy]);
    await expect(authenticator.authenticate(bearer(`Bearer ${revokedToken}`))).rejects.toThrow(
      UnauthenticatedError,
    );
    await expect(
      authenticator.authenticate(bearer(`Bearer ${legacyRevokedToken}`)),
    ).rejects.toThrow(UnauthenticatedError);
    expect((await authenticator.authenticate(bearer(`Bearer ${keptToken}`))).name).toBe("kept");
    // Verified before the reload, checked again after it: the remembered answer was forgotten.
    expect((await authenticator.authenticate(bearer(`Bearer ${legacyTokenValue}`))).name).toBe(
      "legacy",
    );
    expect(state.calls - checksBeforeReload).toBe(2);
  });

  it.each<[string, () => [Grader, string]]>([
    ["a new legacy hash", () => fakeLegacyGrader("rotated")],
    ["a gradecast_ token (credentials add --replace)", () => graderWithToken("rotated", ["q"])],
  ])(
    "refuses a legacy token rotated to %s under the same grader name once reloaded, and takes the new one",
    async (_case, rotate) => {
      const [before, oldToken] = fakeLegacyGrader("rotated");
      const [other, otherToken] = fakeLegacyGrader("other");
      const { verify } = fakeVerifier(false);
      const authenticator = new GraderAuthenticator([before, other], { legacy: { verify } });
      // Verified, hence remembered, before the rotation.
      expect((await authenticator.authenticate(bearer(`Bearer ${oldToken}`))).name).toBe("rotated");
      expect((await authenticator.authenticate(bearer(`Bearer ${otherToken}`))).name).toBe("other");

      const [after, newToken] = rotate();
      authenticator.replace([after, other]);
      await expect(authenticator.authenticate(bearer(`Bearer ${oldToken}`))).rejects.toThrow(
        UnauthenticatedError,
      );
      expect((await authenticator.authenticate(bearer(`Bearer ${newToken}`))).name).toBe("rotated");
      expect((await authenticator.authenticate(bearer(`Bearer ${otherToken}`))).name).toBe("other");
    },
  );

  it("does not use the answer of a legacy check of graders replaced meanwhile", async () => {
    const [kept] = fakeLegacyGrader("kept");
    const [revoked, revokedToken] = fakeLegacyGrader("revoked");
    const { state, verify, releaseOne } = fakeVerifier(true);
    const authenticator = new GraderAuthenticator([revoked, kept], { legacy: { verify } });
    const answer = authenticator.authenticate(bearer(`Bearer ${revokedToken}`));
    await waitUntil(() => state.held.length === 1);
    authenticator.replace([kept]);
    releaseOne(); // the old graders' check says "revoked"...
    // ...and the new graders are asked instead: one check against "kept", which fails.
    await waitUntil(() => state.held.length === 1);
    releaseOne();
    await expect(answer).rejects.toThrow(UnauthenticatedError);
    expect(state.calls).toBe(2);
  });

  it("never runs scrypt for a token with the prefix, even while legacy graders are loaded", async () => {
    const [legacy] = fakeLegacyGrader("legacy");
    const [grader, token] = graderWithToken("g", ["q"]);
    const { state, verify } = fakeVerifier(false);
    const authenticator = new GraderAuthenticator([legacy, grader], { legacy: { verify } });
    for (let i = 0; i < 200; i += 1) {
      await expect(authenticator.authenticate(bearer(`Bearer ${generateToken()}`))).rejects.toThrow(
        UnauthenticatedError,
      );
    }
    expect((await authenticator.authenticate(bearer(`Bearer ${token}`))).name).toBe("g");
    expect(state.calls).toBe(0);
    expect(authenticator.legacyScryptRuns).toBe(0);
  });

  it("accepts a token of an existing scrypt-hashed file, and checks it with scrypt only once", async () => {
    const [first] = await legacyGraderWithToken("legacy-1", ["q"]);
    const [second, secondToken] = await legacyGraderWithToken("legacy-2", ["q"]);
    const authenticator = new GraderAuthenticator([first, second]);
    expect((await authenticator.authenticate(bearer(`Bearer ${secondToken}`))).name).toBe(
      "legacy-2",
    );
    expect(authenticator.legacyScryptRuns).toBe(2);
    expect((await authenticator.authenticate(bearer(`Bearer ${secondToken}`))).name).toBe(
      "legacy-2",
    );
    await expect(authenticator.authenticate(bearer(`Bearer ${legacyToken()}`))).rejects.toThrow(
      UnauthenticatedError,
    );
    expect(authenticator.legacyScryptRuns).toBe(4);
  });
});

describe("LegacyTokenCheck", () => {
  const checkOf = (graders: Grader[], verify: LegacyVerifier, maxQueued = 32, maxRefused = 100) =>
    new LegacyTokenCheck(
      graders,
      makeLegacyCheckOptions({ verify, maxQueued, maxRefusedRemembered: maxRefused }),
    );
  const ask = (check: LegacyTokenCheck, token: string) => check.graderOf(token, tokenDigest(token));

  it("runs one scrypt at a time, however many calls wait", async () => {
    const graders = ["a", "b", "c"].map((name) => fakeLegacyGrader(name)[0]);
    const { state, verify, releaseOne } = fakeVerifier(true);
    const check = checkOf(graders, verify);
    const answers = Array.from({ length: 6 }, () => ask(check, legacyToken()));
    for (let released = 0; released < 18; released += 1) {
      await waitUntil(() => state.held.length === 1);
      expect(state.running).toBe(1);
      releaseOne();
    }
    expect(await Promise.all(answers)).toEqual(Array(6).fill(undefined));
    expect(state).toMatchObject({ calls: 18, maxRunning: 1 });
  });

  it("refuses at once with UNAVAILABLE while maxQueued checks wait, and queues again after", async () => {
    const [grader] = fakeLegacyGrader("a");
    const { state, verify, releaseOne } = fakeVerifier(true);
    const check = checkOf([grader], verify, 2);
    const queued = [ask(check, legacyToken()), ask(check, legacyToken())];
    const busy = ask(check, legacyToken());
    await expect(busy).rejects.toThrow(LegacyChecksBusyError);
    await expect(busy).rejects.toMatchObject({ code: "unavailable" });
    for (let released = 0; released < 2; released += 1) {
      await waitUntil(() => state.held.length === 1);
      releaseOne();
    }
    await Promise.all(queued);
    const again = ask(check, legacyToken());
    await waitUntil(() => state.held.length === 1);
    releaseOne();
    await expect(again).resolves.toBeUndefined();
    expect(state.calls).toBe(3);
  });

  it("lets concurrent calls with one token share one check", async () => {
    const [a] = fakeLegacyGrader("a");
    const [b, bToken] = fakeLegacyGrader("b");
    const { state, verify, releaseOne } = fakeVerifier(true);
    const check = checkOf([a, b], verify);
    const answers = Array.from({ length: 5 }, () => ask(check, bToken));
    for (let released = 0; released < 2; released += 1) {
      await waitUntil(() => state.held.length === 1);
      releaseOne();
    }
    expect((await Promise.all(answers)).map((grader) => grader?.name)).toEqual(Array(5).fill("b"));
    expect(state.calls).toBe(2);
  });

  it("remembers verified tokens, and up to maxRefusedRemembered refused ones, oldest forgotten first", async () => {
    const [grader, token] = fakeLegacyGrader("a");
    const { state, verify } = fakeVerifier(false);
    const check = checkOf([grader], verify, 32, 2);
    const [first, second, third] = [legacyToken(), legacyToken(), legacyToken()];
    for (const junk of [first, second, first, second]) await ask(check, junk);
    expect(state.calls).toBe(2);
    await ask(check, third); // forgets `first`
    await ask(check, second);
    expect(state.calls).toBe(3);
    await ask(check, first);
    expect(state.calls).toBe(4);
    expect((await ask(check, token))?.name).toBe("a");
    expect((await ask(check, token))?.name).toBe("a");
    expect(state.calls).toBe(5);
  });
});

describe("the cost of refusing a stranger", () => {
  const REFUSALS = 2_000;
  /** Far above the few microseconds a refusal takes, far below one scrypt (~50 ms). */
  const MAX_CPU_PER_REFUSAL_US = 100;

  /** CPU microseconds (this process, user + system) per refusal of `tokens`. */
  async function cpuPerRefusalUs(
    authenticator: GraderAuthenticator,
    tokens: readonly string[],
  ): Promise<number> {
    const calls = tokens.map((token) => bearer(`Bearer ${token}`));
    // Bounded: a refusal that got slow again fails here instead of running for minutes.
    const deadline = Date.now() + 20_000;
    const before = process.cpuUsage();
    let refused = 0;
    for (const metadata of calls) {
      if (Date.now() > deadline) break;
      await authenticator.authenticate(metadata).catch((error: unknown) => {
        if (error instanceof UnauthenticatedError) refused += 1;
      });
    }
    const used = process.cpuUsage(before);
    expect(refused).toBe(tokens.length);
    return (used.user + used.system) / tokens.length;
  }

  it.each([1, 10_000])(
    "is microseconds of CPU per unknown token with %i graders, one of them legacy",
    async (graderCount) => {
      const [legacy] = await legacyGraderWithToken("legacy", ["q"]);
      const graders = [
        legacy,
        ...Array.from({ length: graderCount - 1 }, (_, i) => graderWithToken(`g-${i}`, ["q"])[0]),
      ];
      const authenticator = new GraderAuthenticator(graders);
      const junk = Array.from({ length: REFUSALS }, () => generateToken());
      const usPerRefusal = await cpuPerRefusalUs(authenticator, junk);
      console.info(
        `refusing an unknown gradecast_ token, ${graderCount} graders: ${usPerRefusal.toFixed(1)} µs CPU each (${REFUSALS} refusals)`,
      );
      expect(usPerRefusal).toBeLessThan(MAX_CPU_PER_REFUSAL_US);
      expect(authenticator.legacyScryptRuns).toBe(0);
    },
  );

  it("is microseconds of CPU per token without the prefix once no grader has a legacy hash", async () => {
    const graders = Array.from({ length: 100 }, (_, i) => graderWithToken(`g-${i}`, ["q"])[0]);
    const authenticator = new GraderAuthenticator(graders);
    const junk = Array.from({ length: REFUSALS }, () => legacyToken());
    const usPerRefusal = await cpuPerRefusalUs(authenticator, junk);
    console.info(
      `refusing an unknown token without the prefix, no legacy graders: ${usPerRefusal.toFixed(1)} µs CPU each`,
    );
    expect(usPerRefusal).toBeLessThan(MAX_CPU_PER_REFUSAL_US);
  });
});
