import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";

/**
 * `gradecast bench`: runs the compiled benchmark (dist/bench/bench.js, built from a checkout
 * with `npm run build`) with the given flags; `gradecast bench --help` lists them. The bench
 * is repository tooling, so an installed package without it says how to get it.
 */
export function benchCommand(): Command {
  return new Command("bench")
    .description("measure SubmitScore, end-to-end latency and the outbox drain (see --help)")
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument("[flags...]", "bench flags, e.g. --quick --json bench.json")
    .action(async (flags: string[]) => {
      // Built: dist/src/cli/ -> dist/bench/bench.js. From sources (tsx): src/cli/ -> bench/bench.ts.
      const isFromSource = import.meta.url.endsWith(".ts");
      const entry = isFromSource
        ? join(import.meta.dirname, "../../bench/bench.ts")
        : join(import.meta.dirname, "../../bench/bench.js");
      if (!existsSync(entry)) {
        process.stderr.write(
          `gradecast bench: ${entry} is missing: run it from a gradecast checkout after npm run build\n`,
        );
        process.exitCode = 2;
        return;
      }
      process.exitCode = await new Promise<number>((resolve, reject) => {
        const nodeArgs = isFromSource ? ["--import", "tsx", entry] : [entry];
        const child = spawn(process.execPath, [...nodeArgs, ...flags], { stdio: "inherit" });
        // The bench stops what it started on SIGINT/SIGTERM; pass ours on and answer with its
        // exit code (Ctrl-C reaches it directly too, through the terminal's process group).
        const forward = (signal: NodeJS.Signals) => child.kill(signal);
        process.on("SIGINT", forward);
        process.on("SIGTERM", forward);
        child.once("error", reject);
        child.once("exit", (code, signal) => {
          process.off("SIGINT", forward);
          process.off("SIGTERM", forward);
          resolve(code ?? (signal ? 1 : 0));
        });
      });
    });
}
