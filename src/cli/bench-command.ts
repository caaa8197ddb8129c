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
      // dist/src/cli/ -> dist/bench/bench.js
      const entry = join(import.meta.dirname, "../../bench/bench.js");
      if (!existsSync(entry)) {
        process.stderr.write(
          `gradecast bench: ${entry} is missing: run it from a gradecast checkout after npm run build\n`,
        );
        process.exitCode = 2;
        return;
      }
      process.exitCode = await new Promise<number>((resolve, reject) => {
        const child = spawn(process.execPath, [entry, ...flags], { stdio: "inherit" });
        // Ctrl-C reaches the bench through the terminal's process group; the bench stops its
        // children and exits, and this process answers with its exit code.
        child.once("error", reject);
        child.once("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
      });
    });
}
