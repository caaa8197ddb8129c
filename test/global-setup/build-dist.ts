import { spawn } from "node:child_process";
import type { Dirent } from "node:fs";
import { mkdir, readdir, rm, stat, utimes } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * vitest globalSetup: brings dist/ up to date with the sources once per run, because the
 * suite's child processes (`gradecast serve`, the CLI, the bench, the examples) run the
 * compiled copy, which starts far faster than transpiling under tsx on every start.
 *
 * Incremental: when no source is newer than the last build this costs a directory walk;
 * otherwise `tsc -p tsconfig.build.json --incremental` re-emits what changed. A type error
 * does not stop the run (tsc still emits, and `npm test` typechecks first: one helper's
 * half-done change elsewhere must not stop another's tests); a syntax error, which would only
 * crash the children, or a build that wrote nothing fails the run with tsc's output.
 */

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const DIST = join(REPO_ROOT, "dist");
const BUILD_INFO = join(DIST, "tsconfig.build.tsbuildinfo");
/** What tsconfig.build.json compiles, and the configuration that shapes its output. */
const SOURCE_DIRS = ["src", "gen/ts", "examples", "bench"];
const CONFIG_FILES = ["tsconfig.json", "tsconfig.build.json", "package.json"];
/** A file the build must have written; without it the build info is not trusted. */
const SENTINEL_OUTPUT = join(DIST, "src/cli/run.js");
/** Another vitest run (another checkout user) builds at the same time: one tsc at a time. */
const LOCK_FILE = join(DIST, ".build.lock");
/** tsc's exit code when it reported errors but still wrote every output. */
const TSC_EMITTED_WITH_ERRORS = 2;
/** tsc's syntax errors are TS1xxx: the emitted JavaScript would not even load. */
const SYNTAX_ERROR = /error TS1\d{3}:/;

export default async function buildDist(): Promise<void> {
  if (await isDistCurrent()) return;
  const startedAtMs = Date.now();
  await mkdir(DIST, { recursive: true });
  const run = await runTsc();
  if (run.code === 0) {
    // Stamped with the start: a source saved while tsc ran is newer and triggers the next build.
    const startedAt = new Date(startedAtMs);
    await utimes(BUILD_INFO, startedAt, startedAt);
    return;
  }
  if (run.code === TSC_EMITTED_WITH_ERRORS && !SYNTAX_ERROR.test(run.output)) {
    process.stderr.write(
      `warning: tsc -p tsconfig.build.json reported errors; dist/ was written anyway and the tests run it:\n${run.output}\n`,
    );
    // Re-checked next run, so the errors are reported until they are fixed.
    await markForRebuild();
    return;
  }
  await markForRebuild();
  throw new Error(
    `building dist/ failed (tsc -p tsconfig.build.json, ${run.code === null ? `signal ${run.signal}` : `exit code ${run.code}`}); the suite's child processes run dist/:\n${run.output}`,
  );
}

/** Dates the build info back so the next run builds again (no build info: it will anyway). */
async function markForRebuild(): Promise<void> {
  try {
    await utimes(BUILD_INFO, new Date(0), new Date(0));
  } catch (error) {
    if (!isMissing(error)) throw error;
  }
}

/** True when the last build is newer than every source and config file it was made from. */
async function isDistCurrent(): Promise<boolean> {
  const builtAtMs = await modifiedAtMs(BUILD_INFO);
  if (builtAtMs === undefined) return false;
  if ((await modifiedAtMs(SENTINEL_OUTPUT)) === undefined) {
    // dist/ was partly removed: tsc trusts its build info and would not re-emit.
    await rm(BUILD_INFO, { force: true });
    return false;
  }
  for (const file of CONFIG_FILES) {
    if (((await modifiedAtMs(join(REPO_ROOT, file))) ?? 0) > builtAtMs) return false;
  }
  for (const dir of SOURCE_DIRS) {
    if (await hasFileNewerThan(join(REPO_ROOT, dir), builtAtMs)) return false;
  }
  return true;
}

async function hasFileNewerThan(dir: string, thresholdMs: number): Promise<boolean> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if (isMissing(error)) return false;
    throw error;
  }
  // The directory's own time changes when a file is added, removed or renamed in it.
  if (((await modifiedAtMs(dir)) ?? 0) > thresholdMs) return true;
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== "node_modules" && (await hasFileNewerThan(path, thresholdMs))) return true;
    } else if (((await modifiedAtMs(path)) ?? 0) > thresholdMs) {
      return true;
    }
  }
  return false;
}

async function modifiedAtMs(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).mtimeMs;
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

function isMissing(error: unknown): boolean {
  return error instanceof Error && "code" in error && error.code === "ENOENT";
}

interface TscRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/** Runs the incremental build under `flock` where there is one (Linux), else directly. */
async function runTsc(): Promise<TscRun> {
  const tsc = join(REPO_ROOT, "node_modules/.bin/tsc");
  const tscArgs = ["-p", "tsconfig.build.json", "--incremental", "--tsBuildInfoFile", BUILD_INFO];
  const locked = await run("flock", [LOCK_FILE, tsc, ...tscArgs]);
  const result = locked === "no-such-command" ? await run(tsc, tscArgs) : locked;
  if (result === "no-such-command") {
    throw new Error(`building dist/ failed: ${tsc} is missing (npm install)`);
  }
  return result;
}

function run(command: string, args: readonly string[]): Promise<TscRun | "no-such-command"> {
  return new Promise((settle, fail) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const append = (chunk: string) => {
      output += chunk;
    };
    child.stdout.setEncoding("utf8").on("data", append);
    child.stderr.setEncoding("utf8").on("data", append);
    child.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") settle("no-such-command");
      else fail(error);
    });
    child.once("close", (code, signal) => settle({ code, signal, output }));
  });
}
