import { defineConfig } from "vitest/config";

// The tests `npm run mutation` (StrykerJS, scripts/mutation.ts) runs against the mutants of
// one module: the files it names in GRADECAST_MUTATION_TESTS. Each module is tested by the
// suites that drive it in this process; a suite that drives a child `gradecast serve` cannot
// see a mutant (Stryker activates it in the test process only), so those stay in `npm test`.
const include = (process.env.GRADECAST_MUTATION_TESTS ?? "").split(",").filter(Boolean);
if (include.length === 0) throw new Error("GRADECAST_MUTATION_TESTS names no test file");

export default defineConfig({
  test: {
    include,
    // Some suites also run a CLI command as a child (from dist/, which the sandbox lacks);
    // the child sees no mutant, the test process does.
    globalSetup: ["test/global-setup/build-dist.ts"],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
