import { Command, CommanderError } from "commander";
import { GradecastError } from "../contract/index.js";
import { benchCommand } from "./bench-command.js";
import { ConfigError } from "./config-values.js";
import { printContractSummary } from "./contract-command.js";
import { credentialsCommand } from "./credentials-command.js";
import { dlqCommand } from "./dlq-command.js";
import { explainCommand } from "./explain-command.js";
import { outboxCommand } from "./outbox-command.js";
import { serveCommand } from "./serve-command.js";
import { getScoreCommand, submitCommand } from "./submit-command.js";
import { tailCommand } from "./tail-command.js";

/** Where the command line writes its own output: usage, results and error lines. */
export interface CliOutput {
  stdout(text: string): void;
  stderr(text: string): void;
}

const PROCESS_OUTPUT: CliOutput = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/**
 * Runs the `gradecast` command line; resolves to the process exit code:
 * 0 done, 1 the work failed, 2 bad usage or configuration (one line on stderr).
 * `output` replaces the process's stdout and stderr for what main and commander write (tests
 * run configuration errors in-process with it); it never exits the process itself.
 */
export async function main(argv: string[], output: CliOutput = PROCESS_OUTPUT): Promise<number> {
  const write = (line: string) => output.stdout(`${line}\n`);
  const program = new Command()
    .name("gradecast")
    .description(
      "External grader scores over gRPC, delivered to the LMS as Open edX events on NATS JetStream.",
    );

  program.addCommand(serveCommand());
  program.addCommand(submitCommand(write));
  program.addCommand(getScoreCommand(write));
  program.addCommand(tailCommand(write));
  program.addCommand(dlqCommand(write));
  program.addCommand(outboxCommand(write));
  program.addCommand(explainCommand(write));
  program.addCommand(credentialsCommand(write));
  program.addCommand(benchCommand());
  program
    .command("contract")
    .description("print the event type, the gRPC methods and an example event")
    .action(() => printContractSummary(write));
  const exitOverrideAll = (command: Command): void => {
    command.exitOverride().configureOutput({ writeOut: output.stdout, writeErr: output.stderr });
    for (const sub of command.commands) exitOverrideAll(sub);
  };
  exitOverrideAll(program);

  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (error instanceof ConfigError) {
      output.stderr(`gradecast: ${error.message}\n`);
      return 2;
    }
    // An expected failure (store or NATS unreachable, ...) says what and why in its message.
    if (error instanceof GradecastError) {
      output.stderr(`gradecast: ${error.message}\n`);
      return 1;
    }
    output.stderr(`gradecast: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}
