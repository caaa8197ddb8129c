import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runTsxScript, type ScriptRun } from "../helpers/child-process.js";

/**
 * A `serve` that got past its configuration would run until killed: this fails it instead.
 * Generous: each case starts Node with tsx, several at once, on a 2-core machine that also
 * runs other suites (one case once took 19 s there); a refused setting exits in about 1 s alone.
 */
const CLI_TIMEOUT_MS = 60_000;

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gradecast-cli-config-"));
  await writeFile(join(dir, "malformed.json"), "{ not json");
  await writeFile(join(dir, "no-graders.json"), JSON.stringify({ graders: "none" }));
  await mkdir(join(dir, "a-directory.json"));
  await writeFile(join(dir, "not-a-cert.pem"), "hello");
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/**
 * Runs `gradecast serve <args>` as a child process with only `env` from the GRADECAST_*
 * settings (none of the test runner's leak in). Everything else a valid start needs points
 * somewhere harmless: no metrics port, a free gRPC port, a temp data dir.
 */
function runServe(args: readonly string[], env: Record<string, string>): Promise<ScriptRun> {
  const baseArgs = ["--listen", "127.0.0.1:0", "--metrics-listen", "off", "--data-dir", dir];
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith("GRADECAST_")),
  );
  return runTsxScript("src/cli/run.ts", ["serve", ...baseArgs, ...args], {
    env: { ...inherited, ...env },
    timeoutMs: CLI_TIMEOUT_MS,
    killSignal: "SIGKILL",
  });
}

const path = (name: string) => join(dir, name);
const AUTH_OFF = ["--insecure-no-auth"];

describe("gradecast serve with an unusable setting", () => {
  it.concurrent.each<[string, () => string[], Record<string, string>, RegExp]>([
    ["an unknown flag", () => [...AUTH_OFF, "--bogus"], {}, /unknown option '--bogus'/],
    ["a flag without its value", () => [...AUTH_OFF, "--nats-url"], {}, /--nats-url/],
    [
      "a --nats-url that is not nats://",
      () => [...AUTH_OFF, "--nats-url", "http://127.0.0.1:4222"],
      {},
      /^gradecast: invalid --nats-url: /,
    ],
    [
      "a GRADECAST_NATS_URL without a port",
      () => AUTH_OFF,
      { GRADECAST_NATS_URL: "nats://" },
      /^gradecast: invalid --nats-url: /,
    ],
    [
      "a missing --tls-cert file",
      () => [...AUTH_OFF, "--tls-cert", path("missing.pem"), "--tls-key", path("missing.key")],
      {},
      /^gradecast: invalid --tls-cert: .*ENOENT/,
    ],
    [
      "a --tls-cert that is not PEM",
      () => [
        ...AUTH_OFF,
        "--tls-cert",
        path("not-a-cert.pem"),
        "--tls-key",
        path("not-a-cert.pem"),
      ],
      {},
      /^gradecast: invalid --tls-(cert|key): /,
    ],
    [
      "--tls-cert without --tls-key",
      () => [...AUTH_OFF, "--tls-cert", path("not-a-cert.pem")],
      {},
      /^gradecast: invalid --tls-key: /,
    ],
    [
      "a missing --credentials file",
      () => ["--credentials", path("missing.json")],
      {},
      /^gradecast: invalid --credentials: /,
    ],
    [
      "a --credentials file that is not JSON",
      () => ["--credentials", path("malformed.json")],
      {},
      /^gradecast: invalid --credentials: .*not JSON/,
    ],
    [
      "a --credentials file without a graders map",
      () => ["--credentials", path("no-graders.json")],
      {},
      /^gradecast: invalid --credentials: /,
    ],
    [
      "a --credentials path that is a directory",
      () => ["--credentials", path("a-directory.json")],
      {},
      /^gradecast: invalid --credentials: /,
    ],
    [
      "neither --credentials nor --insecure-no-auth",
      () => [],
      {},
      /^gradecast: invalid --credentials: graders must authenticate/,
    ],
    [
      "a bad --log-level",
      () => [...AUTH_OFF, "--log-level", "loud"],
      {},
      /^gradecast: invalid --log-level: "loud"/,
    ],
    [
      "a bad GRADECAST_LOG_LEVEL",
      () => AUTH_OFF,
      { GRADECAST_LOG_LEVEL: "chatty" },
      /^gradecast: invalid --log-level: "chatty"/,
    ],
    [
      "a bad --log-format",
      () => [...AUTH_OFF, "--log-format", "fancy"],
      {},
      /^gradecast: invalid --log-format: "fancy"/,
    ],
    [
      "a bad --listen",
      () => [...AUTH_OFF, "--listen", "nonsense"],
      {},
      /^gradecast: invalid --listen: "nonsense"/,
    ],
    [
      "a --listen port out of range",
      () => [...AUTH_OFF, "--listen", "127.0.0.1:70000"],
      {},
      /^gradecast: invalid --listen: /,
    ],
    [
      "a bad --metrics-listen",
      () => [...AUTH_OFF, "--metrics-listen", "everywhere"],
      {},
      /^gradecast: invalid --metrics-listen: /,
    ],
    [
      "a bad --shutdown-timeout",
      () => [...AUTH_OFF, "--shutdown-timeout", "soon"],
      {},
      /^gradecast: invalid --shutdown-timeout: /,
    ],
  ])(
    "%s exits 2 with one line naming the setting",
    async (_, args, env, expected) => {
      const result = await runServe(args(), env);
      expect(result.signal, `still running after ${CLI_TIMEOUT_MS} ms`).toBeNull();
      expect(result.code).toBe(2);
      expect(result.stdout).toBe("");
      const lines = result.stderr.split("\n");
      expect(lines.at(-1), "stderr ends with a newline").toBe("");
      expect(lines.slice(0, -1)).toEqual([expect.stringMatching(expected)]);
    },
    CLI_TIMEOUT_MS + 10_000,
  );
});
