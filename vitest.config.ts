import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Once per run, before any test file: bring dist/ up to date (the suite's child processes
    // run the compiled CLI, bench and examples, not tsx).
    globalSetup: ["test/global-setup/build-dist.ts"],
    // Integration suites start their own nats-server and gradecast processes:
    // two cores, so run files one or two at a time and give sockets time.
    fileParallelism: true,
    maxWorkers: 2,
    // Generous: a test waits on conditions (each with its own outer bound, up to a minute) and
    // CI machines are busy; a hung test still fails, only later.
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
