import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BenchReport } from "../../bench/bench-report.js";
import { runScript, type ScriptRun } from "../helpers/child-process.js";

/** --quick should take well under a minute; a shared, loaded machine gets room beyond that. */
const BENCH_TIMEOUT_MS = 150_000;

/**
 * Runs the bench as `npm run bench` does, from dist/ (vitest's globalSetup builds it), so its
 * gradecast and echo-server children run compiled too; stopped at the bound.
 */
function runBench(args: readonly string[]): Promise<ScriptRun> {
  // SIGTERM lets the bench stop the servers it started; the test then fails on the exit code.
  return runScript("bench/bench.ts", args, {
    timeoutMs: BENCH_TIMEOUT_MS - 10_000,
    killSignal: "SIGTERM",
  });
}

describe("npm run bench -- --quick --preload 2000", () => {
  let dir: string;
  let jsonPath: string;
  let run: ScriptRun;
  let report: BenchReport;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "gradecast-bench-test-"));
    jsonPath = join(dir, "nested", "bench.json");
    run = await runBench(["--quick", "--preload", "2000", "--json", jsonPath]);
    if (run.code === 0) report = JSON.parse(await readFile(jsonPath, "utf8")) as BenchReport;
  }, BENCH_TIMEOUT_MS);

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("runs every scenario and exits 0", () => {
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(report.scenarios.map((scenario) => scenario.id)).toEqual([
      "echo-baseline",
      "closed-loop",
      "open-loop-500",
      "open-loop-2000",
      "jetstream-publish-baseline",
      "outbox-drain",
    ]);
  });

  it("completes every scenario's calls with zero errors and no problems", () => {
    for (const scenario of report.scenarios) {
      expect(scenario.problems, scenario.id).toEqual([]);
      expect(scenario.errors, scenario.id).toBe(0);
      expect(scenario.load.errors, scenario.id).toBe(0);
      expect(scenario.load.completed, scenario.id).toBe(scenario.load.requested);
      expect(scenario.load.completed, scenario.id).toBeGreaterThan(0);
      expect(scenario.load.latency.samples, scenario.id).toBe(scenario.load.completed);
    }
  });

  it("delivers every open-loop event to the SDK subscriber and drains the whole outbox", () => {
    for (const id of ["open-loop-500", "open-loop-2000"]) {
      const scenario = report.scenarios.find((candidate) => candidate.id === id);
      expect(scenario?.endToEnd?.missing, id).toBe(0);
      expect(scenario?.endToEnd?.samples, id).toBe(scenario?.load.completed);
    }
    const drain = report.scenarios.find((scenario) => scenario.id === "outbox-drain");
    expect(drain?.drain?.events).toBe(drain?.load.requested);
  });

  it("reports gradecast's CPU and memory for the scenarios that drive it, and both ratios", () => {
    for (const id of ["closed-loop", "open-loop-500", "open-loop-2000", "outbox-drain"]) {
      const server = report.scenarios.find((scenario) => scenario.id === id)?.server;
      expect(server?.cpuS, id).toBeGreaterThan(0);
      expect(server?.peakRssMb, id).toBeGreaterThan(0);
    }
    expect(Number.isFinite(report.ratios.submitScoreOverEcho)).toBe(true);
    expect(Number.isFinite(report.ratios.drainOverRawPublish)).toBe(true);
  });

  it("preloads the store before serving and reports its size before and after the run", () => {
    expect(report.store).toMatchObject({ kind: "sqlite", preloadedScores: 2000 });
    expect(report.store.preloadS).toBeGreaterThan(0);
    // 2,000 scores of a 2 KB score_msg, each with its event: several MB before the run starts.
    expect(report.store.sizeBeforeBytes).toBeGreaterThan(2000 * 2048);
    expect(report.store.sizeAfterBytes).toBeGreaterThan(report.store.sizeBeforeBytes);
    expect(run.stderr).toMatch(/\[bench [\d.]+ s\] preload: 2000 of 2000 scores \(100%\)/);
    expect(run.stdout).toMatch(
      /^sqlite store: 2000 scores preloaded in [\d.]+ s; [\d.]+ MB before the run, [\d.]+ MB after$/m,
    );
  });

  it("prints the table with the ratios last", () => {
    const lines = run.stdout.trimEnd().split("\n");
    expect(lines.at(-2)).toMatch(/^SubmitScore \/ echo throughput/);
    expect(lines.at(-1)).toMatch(/^outbox drain \/ raw JetStream publish rate/);
    expect(run.stderr).toMatch(/\[bench [\d.]+ s\] closed loop:/);
  });
});
