// `npm run mutation [-- <module>...]`: StrykerJS mutation testing of the modules where a bug
// loses or duplicates a score, each against the suites that drive it in the test process.
// One Stryker run per module keeps each run's tests to the ones that matter (a mutant of
// validation.ts re-run against every integration suite would take hours on two cores).
// Prints, per module, what its mutants did and the mutation score; the reports (html, json)
// are in reports/mutation/. Exits 1 when a Stryker run fails (the other modules still run), not when mutants survive.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** Each module and the test files that exercise it in this process. */
const MODULE_TESTS: Readonly<Record<string, readonly string[]>> = {
  "src/contract/validation.ts": [
    "test/unit/validation.test.ts",
    "test/integration/bad-requests.test.ts",
  ],
  "src/store/score-rows.ts": [
    "test/unit/score-rows.test.ts",
    "test/integration/store-contract.test.ts",
    "test/integration/outbox-pruning.test.ts",
  ],
  "src/events/outbox-relay.ts": [
    "test/unit/outbox-relay.test.ts",
    "test/integration/nats-outage.test.ts",
    "test/integration/unpublishable-scores.test.ts",
  ],
  "src/events/publisher.ts": [
    "test/integration/event-publisher.test.ts",
    "test/integration/unpublishable-scores.test.ts",
  ],
  "src/server/score-intake.ts": [
    "test/unit/score-intake.test.ts",
    "test/integration/submit-score.test.ts",
    "test/integration/bad-requests.test.ts",
    "test/integration/unpublishable-scores.test.ts",
    "test/integration/submission-identity.test.ts",
    "test/integration/grader-auth.test.ts",
    "test/integration/trace-context.test.ts",
    "test/integration/nats-outage.test.ts",
  ],
  "src/subscriber/subscribe-to-scores.ts": [
    "test/integration/subscriber.test.ts",
    "test/integration/subscriber-jetstream-trouble.test.ts",
    "test/integration/subscriber-submission-key.test.ts",
    "test/integration/trace-context.test.ts",
  ],
  "src/server/grader-auth.ts": [
    "test/unit/grader-auth.test.ts",
    "test/integration/grader-auth.test.ts",
  ],
};

/** What one module's mutants did, from Stryker's JSON report (mutation-testing-report-schema). */
interface ModuleResult {
  module: string;
  counts: Record<string, number>;
  survivors: string[];
}

function main(argv: readonly string[]): number {
  const modules = argv.length > 0 ? argv : Object.keys(MODULE_TESTS);
  const unknown = modules.filter((module) => !(module in MODULE_TESTS));
  if (unknown.length > 0) {
    console.error(`mutation: no tests configured for ${unknown.join(", ")}`);
    console.error(`modules: ${Object.keys(MODULE_TESTS).join(", ")}`);
    return 2;
  }
  const results: ModuleResult[] = [];
  const failed: string[] = [];
  for (const module of modules) {
    const startedMs = Date.now();
    console.log(`\n== mutation: ${module} (tests: ${MODULE_TESTS[module]?.join(", ")})`);
    const run = spawnSync("npx", ["stryker", "run"], {
      stdio: "inherit",
      env: {
        ...process.env,
        GRADECAST_MUTATION_MODULE: module,
        GRADECAST_MUTATION_TESTS: MODULE_TESTS[module]?.join(",") ?? "",
      },
    });
    if (run.status !== 0) {
      // The other modules still get their run; the exit code reports the failure.
      console.error(`mutation: stryker failed on ${module} (exit ${run.status ?? run.signal})`);
      failed.push(module);
      continue;
    }
    const result = readReport(module);
    results.push(result);
    console.log(
      `== ${module}: ${formatCounts(result)} in ${((Date.now() - startedMs) / 60_000).toFixed(1)} min`,
    );
  }
  console.log("\nmodule | killed | timeout | survived | no coverage | score");
  console.log("---|---|---|---|---|---");
  for (const result of results) {
    const c = result.counts;
    console.log(
      `${result.module} | ${c.Killed ?? 0} | ${c.Timeout ?? 0} | ${c.Survived ?? 0} | ${c.NoCoverage ?? 0} | ${score(result)}`,
    );
  }
  for (const result of results) {
    for (const survivor of result.survivors) console.log(`survived: ${result.module}:${survivor}`);
  }
  if (failed.length > 0) {
    console.error(`mutation: stryker failed on ${failed.join(", ")}`);
    return 1;
  }
  return 0;
}

function readReport(module: string): ModuleResult {
  const reportName = module
    .replace(/^src\//, "")
    .replace(/\.ts$/, "")
    .replaceAll("/", "-");
  const report = JSON.parse(readFileSync(`reports/mutation/${reportName}.json`, "utf8")) as {
    files: Record<
      string,
      {
        mutants: Array<{
          status: string;
          mutatorName: string;
          replacement?: string;
          location: { start: { line: number } };
        }>;
      }
    >;
  };
  const counts: Record<string, number> = {};
  const survivors: string[] = [];
  for (const file of Object.values(report.files)) {
    for (const mutant of file.mutants) {
      counts[mutant.status] = (counts[mutant.status] ?? 0) + 1;
      if (mutant.status === "Survived" || mutant.status === "NoCoverage") {
        survivors.push(
          `${mutant.location.start.line} ${mutant.mutatorName} ${JSON.stringify(mutant.replacement ?? "")}`,
        );
      }
    }
  }
  return { module, counts, survivors };
}

/** Stryker's mutation score: detected (killed or timed out) over all valid mutants. */
function score(result: ModuleResult): string {
  const c = result.counts;
  const detected = (c.Killed ?? 0) + (c.Timeout ?? 0);
  const valid = detected + (c.Survived ?? 0) + (c.NoCoverage ?? 0);
  return valid === 0 ? "n/a" : `${((100 * detected) / valid).toFixed(1)}%`;
}

function formatCounts(result: ModuleResult): string {
  return `${Object.entries(result.counts)
    .map(([status, count]) => `${count} ${status}`)
    .join(", ")}; score ${score(result)}`;
}

process.exitCode = main(process.argv.slice(2));
