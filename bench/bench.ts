// Entry of `npm run bench` and `gradecast bench`: runs every scenario, prints the table to
// stdout (progress to stderr), writes the JSON when asked. Exit code 1 when any scenario had
// errors or problems, 2 on bad usage or when the harness itself failed, 130 when interrupted.
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { CommanderError } from "commander";
import { type BenchOptions, parseBenchOptions } from "./bench-options.js";
import { reportTable } from "./report-table.js";
import { runBench } from "./run-bench.js";

let options: BenchOptions;
try {
  options = parseBenchOptions(process.argv.slice(2));
} catch (error) {
  // commander has printed the usage problem (or the help).
  if (error instanceof CommanderError) process.exit(error.exitCode === 0 ? 0 : 2);
  throw error;
}
const started = performance.now();
const progress = (line: string) =>
  process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1)} s] ${line}\n`);

// The first Ctrl-C or SIGTERM stops the servers the bench started; a second one leaves at once
// (the "exit" hooks still SIGKILL them).
const interrupted = new AbortController();
const onSignal = (signal: NodeJS.Signals) => {
  if (interrupted.signal.aborted) process.exit(130);
  progress(`${signal} received`);
  interrupted.abort();
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);

try {
  const report = await runBench(options, progress, interrupted.signal);
  process.stdout.write(`${reportTable(report).join("\n")}\n`);
  if (options.jsonPath !== undefined) {
    await mkdir(dirname(options.jsonPath), { recursive: true });
    await writeFile(options.jsonPath, `${JSON.stringify(report, null, 2)}\n`);
    progress(`figures written to ${options.jsonPath}`);
  }
  process.exitCode = report.scenarios.some((s) => s.errors > 0 || s.problems.length > 0) ? 1 : 0;
} catch (error) {
  if (interrupted.signal.aborted) {
    progress("interrupted; nothing reported");
    process.exitCode = 130;
  } else {
    process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 2;
  }
}
// grpc-js and nats.js may keep timers alive after the run; everything is reported, so leave.
process.exit();
