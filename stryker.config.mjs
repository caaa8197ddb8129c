// StrykerJS settings for `npm run mutation` (scripts/mutation.ts), which runs Stryker once per
// module, naming the module in GRADECAST_MUTATION_MODULE (a file under src/) and its tests in
// GRADECAST_MUTATION_TESTS (read by vitest.mutation.config.ts). Reports go to reports/mutation/.
const module = process.env.GRADECAST_MUTATION_MODULE;
if (!module) throw new Error("GRADECAST_MUTATION_MODULE names no module: run `npm run mutation`");
const reportName = module
  .replace(/^src\//, "")
  .replace(/\.ts$/, "")
  .replaceAll("/", "-");

/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
  mutate: [module],
  testRunner: "vitest",
  // Tests import the package through index.ts files, which vitest's "related" lookup misses.
  vitest: { configFile: "vitest.mutation.config.ts", related: false },
  coverageAnalysis: "perTest",
  concurrency: 2,
  // A mutant that hangs a test (a lost wake-up, a loop) counts as detected after this much on
  // top of the test's own time; 10 s keeps such mutants from dominating the run.
  timeoutMS: 10_000,
  reporters: ["progress-append-only", "html", "json"],
  htmlReporter: { fileName: `reports/mutation/${reportName}.html` },
  jsonReporter: { fileName: `reports/mutation/${reportName}.json` },
  // A second run re-tests only mutants whose code or tests changed.
  incremental: true,
  incrementalFile: `reports/mutation/${reportName}.incremental.json`,
  tempDirName: ".data/stryker-tmp",
  cleanTempDir: "always",
  ignorePatterns: [".data", "dist", "reports", "bench/results", "python", "coverage"],
};
