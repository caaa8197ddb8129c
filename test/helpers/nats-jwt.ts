import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
// A dependency of @nats-io/nats-core, not of gradecast: tests only, to mint what `nsc` would.
import { createAccount, createOperator, createUser, type KeyPair } from "@nats-io/nkeys";

/**
 * A nats-server in operator mode (decentralized JWT auth), written to a temp dir: its config
 * trusts one operator and preloads its accounts, and two `.creds` files are ready for clients.
 */
export interface OperatorModeFiles {
  /** The temp dir holding everything below; `cleanup()` removes it. */
  readonly dir: string;
  /** nats-server config to pass with `-c`: operator JWT, system account, memory resolver. */
  readonly serverConfigPath: string;
  /** `.creds` of a user in an account the operator issued, with JetStream enabled. */
  readonly userCredsPath: string;
  /** `.creds` of a user whose account the operator never issued: the server refuses it. */
  readonly strangerCredsPath: string;
  cleanup(): Promise<void>;
}

/** Unlimited JetStream for an account (0 would disable it: operator mode enables it per account). */
const UNLIMITED_ACCOUNT_LIMITS = {
  subs: -1,
  data: -1,
  payload: -1,
  imports: -1,
  exports: -1,
  wildcards: true,
  conn: -1,
  leaf: -1,
  mem_storage: -1,
  disk_storage: -1,
  streams: -1,
  consumer: -1,
} as const;

/** Creates fresh operator, system account, account and user keys and writes the files above. */
export async function writeOperatorModeFiles(): Promise<OperatorModeFiles> {
  const operator = createOperator();
  const systemAccount = createAccount();
  const account = createAccount();
  const user = createUser();
  const strangerAccount = createAccount();
  const stranger = createUser();

  const systemAccountJwt = encodeJwt(systemAccount, operator, "SYS", {
    type: "account",
    limits: { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, conn: -1, leaf: -1 },
  });
  const accountJwt = encodeJwt(account, operator, "GRADECAST", {
    type: "account",
    limits: UNLIMITED_ACCOUNT_LIMITS,
  });
  const operatorJwt = encodeJwt(operator, operator, "gradecast-test-operator", {
    type: "operator",
    system_account: systemAccount.getPublicKey(),
  });

  const dir = await mkdtemp(join(tmpdir(), "gradecast-nats-jwt-"));
  const serverConfigPath = join(dir, "nats-server.conf");
  const userCredsPath = join(dir, "gradecast.creds");
  const strangerCredsPath = join(dir, "stranger.creds");
  try {
    await writeFile(
      serverConfigPath,
      [
        `operator: ${operatorJwt}`,
        `system_account: ${systemAccount.getPublicKey()}`,
        "resolver: MEMORY",
        "resolver_preload: {",
        `  ${systemAccount.getPublicKey()}: ${systemAccountJwt}`,
        `  ${account.getPublicKey()}: ${accountJwt}`,
        "}",
        "",
      ].join("\n"),
    );
    await writeFile(userCredsPath, credsFile(user, account, "gradecast"), { mode: 0o600 });
    await writeFile(strangerCredsPath, credsFile(stranger, strangerAccount, "stranger"), {
      mode: 0o600,
    });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    dir,
    serverConfigPath,
    userCredsPath,
    strangerCredsPath,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** A `.creds` file as `nsc generate creds` writes it: the user JWT, then the user's seed. */
function credsFile(user: KeyPair, account: KeyPair, name: string): string {
  const userJwt = encodeJwt(user, account, name, {
    type: "user",
    pub: {},
    sub: {},
    subs: -1,
    data: -1,
    payload: -1,
  });
  const seed = new TextDecoder().decode(user.getSeed());
  return [
    "-----BEGIN NATS USER JWT-----",
    userJwt,
    "------END NATS USER JWT------",
    "",
    "************************* IMPORTANT *************************",
    "NKEY Seed printed below can be used to sign and prove identity.",
    "NKEYs are sensitive and should be treated as secrets.",
    "",
    "-----BEGIN USER NKEY SEED-----",
    seed,
    "------END USER NKEY SEED------",
    "",
  ].join("\n");
}

/**
 * A NATS JWT (nats-io/jwt v2): `subject`'s claims signed by `issuer`. `jti` is the unpadded
 * base32 SHA-512/256 of the standard claims without it, as the Go library computes it.
 */
function encodeJwt(
  subject: KeyPair,
  issuer: KeyPair,
  name: string,
  nats: { type: "operator" | "account" | "user" } & Record<string, unknown>,
): string {
  // Key order matters for jti: it follows the Go struct (aud, exp, jti, iat, iss, name, nbf, sub).
  const standard = {
    iat: Math.floor(Date.now() / 1000),
    iss: issuer.getPublicKey(),
    name,
    sub: subject.getPublicKey(),
  };
  const jti = base32NoPadding(createHash("sha512-256").update(JSON.stringify(standard)).digest());
  const claims = { jti, ...standard, nats: { ...nats, version: 2 } };
  const header = base64Url(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" }));
  const toSign = `${header}.${base64Url(JSON.stringify(claims))}`;
  const signature = Buffer.from(issuer.sign(new TextEncoder().encode(toSign))).toString(
    "base64url",
  );
  return `${toSign}.${signature}`;
}

function base64Url(text: string): string {
  return Buffer.from(text, "utf8").toString("base64url");
}

const BASE32_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** RFC 4648 base32 without `=` padding (Go's `base32.StdEncoding.WithPadding(NoPadding)`). */
function base32NoPadding(bytes: Uint8Array): string {
  let output = "";
  let buffer = 0;
  let bitCount = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bitCount += 8;
    while (bitCount >= 5) {
      output += BASE32_ALPHABET[(buffer >>> (bitCount - 5)) & 31];
      bitCount -= 5;
    }
    buffer &= (1 << bitCount) - 1;
  }
  if (bitCount > 0) output += BASE32_ALPHABET[(buffer << (5 - bitCount)) & 31];
  return output;
}
