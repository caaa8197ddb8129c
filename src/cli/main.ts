import { Command } from "commander";
import { printContractSummary } from "./contract-command.js";

/** Runs the `gradecast` command line; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = new Command()
    .name("gradecast")
    .description(
      "External grader scores over gRPC, delivered to the LMS as Open edX events on NATS JetStream.",
    )
    .exitOverride();

  program
    .command("contract")
    .description("print the event type, the gRPC methods and an example event")
    .action(() => printContractSummary((line) => process.stdout.write(`${line}\n`)));

  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    const code = (error as { exitCode?: number }).exitCode;
    return typeof code === "number" ? (code === 0 ? 0 : 2) : 1;
  }
}
