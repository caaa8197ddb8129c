import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { main } from "../../src/cli/main.js";
import { runScript, type ScriptRun } from "../helpers/child-process.js";

/**
 * A `serve` that got past its configuration would run until killed: this fails it instead.
 * Generous: a child process on a 2-core machine that also runs other suites; a refused setting
 * exits in well under a second alone.
 */
const CLI_TIMEOUT_MS = 60_000;
/** A refused setting is refused before anything starts: in-process, that is milliseconds. */
const IN_PROCESS_TIMEOUT_MS = 20_000;

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

afterEach(() => {
  vi.unstubAllEnvs();
});

/** Everything else a valid start needs points somewhere harmless: no metrics port, port 0, a temp dir. */
const serveArgs = (args: readonly string[]) => [
  "serve",
  "--listen",
  "127.0.0.1:0",
  "--metrics-listen",
  "off",
  "--data-dir",
  dir,
  ...args,
];

/** What `gradecast` answered: its exit code and everything it wrote. */
interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `gradecast serve <args>` in this process through the CLI's `main`, with only `env` from
 * the GRADECAST_* settings (none of the test runner's leak in), capturing what it writes.
 * commander reads the environment at parse time, so the cases run one at a time.
 */
async function runServeInProcess(
  args: readonly string[],
  env: Record<string, string>,
): Promise<CliRun> {
  for (const name of Object.keys(process.env)) {
    if (name.startsWith("GRADECAST_")) vi.stubEnv(name, undefined);
  }
  for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
  let stdout = "";
  let stderr = "";
  const code = await main(["node", "gradecast", ...serveArgs(args)], {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
  });
  return { code, stdout, stderr };
}

/** Runs `gradecast serve <args>` as a child process (dist/src/cli/run.js), with only `env`. */
function runServeProcess(args: readonly string[], env: Record<string, string>): Promise<ScriptRun> {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith("GRADECAST_")),
  );
  return runScript("src/cli/run.ts", serveArgs(args), {
    env: { ...inherited, ...env },
    timeoutMs: CLI_TIMEOUT_MS,
    killSignal: "SIGKILL",
  });
}

/** Exit code 2, nothing on stdout, and exactly one newline-terminated stderr line matching. */
function expectOneLineRefusal(run: CliRun, expected: RegExp): void {
  expect(run.code).toBe(2);
  expect(run.stdout).toBe("");
  const lines = run.stderr.split("\n");
  expect(lines.at(-1), "stderr ends with a newline").toBe("");
  expect(lines.slice(0, -1)).toEqual([expect.stringMatching(expected)]);
}

const path = (name: string) => join(dir, name);
const AUTH_OFF = ["--insecure-no-auth"];

describe("gradecast serve with an unusable setting", () => {
  it.each<[string, () => string[], Record<string, string>, RegExp]>([
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
      expectOneLineRefusal(await runServeInProcess(args(), env), expected);
    },
    IN_PROCESS_TIMEOUT_MS,
  );
});

// The cases above go through `main` in this process; these two show the same answer reaches a
// real process's exit code and stderr, for a flag and for an environment variable.
describe("gradecast serve as a process with an unusable setting", () => {
  it.concurrent.each<[string, string[], Record<string, string>, RegExp]>([
    ["an unknown flag", [...AUTH_OFF, "--bogus"], {}, /unknown option '--bogus'/],
    [
      "a bad GRADECAST_LOG_LEVEL",
      AUTH_OFF,
      { GRADECAST_LOG_LEVEL: "chatty" },
      /^gradecast: invalid --log-level: "chatty"/,
    ],
  ])(
    "%s exits 2 with one line on stderr",
    async (_, args, env, expected) => {
      const run = await runServeProcess(args, env);
      expect(run.signal, `still running after ${CLI_TIMEOUT_MS} ms`).toBeNull();
      expectOneLineRefusal(run, expected);
    },
    CLI_TIMEOUT_MS + 10_000,
  );
});
