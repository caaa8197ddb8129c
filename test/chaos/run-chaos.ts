/**
 * `npm run chaos`: gradecast's own fault campaign. See `npm run chaos -- --help` and README
 * "Fault campaign". Exits 0 when every form passed, 1 when one did not, 2 on a bad flag, 130
 * when interrupted (after removing what it started).
 */
import { randomInt } from "node:crypto";
import { Command, InvalidArgumentError, Option } from "commander";
import buildDist from "../global-setup/build-dist.js";
import { type CampaignReport, runChaosCampaign } from "./campaign.js";
import {
  CHAOS_FORMS,
  type ChaosNatsForm,
  type ChaosStoreKind,
  DEFAULT_CHAOS_OPTIONS,
  FAULT_KINDS,
  type FaultKind,
} from "./chaos-options.js";
import { formatCampaign, formatTotals } from "./summary.js";

/** Signals this close to the first one are the same interrupt, delivered twice. */
const SAME_INTERRUPT_MS = 1_000;

interface ChaosFlags {
  form: ChaosNatsForm | "all";
  store: ChaosStoreKind | "all";
  duration: number;
  concurrency: number;
  rate: number;
  maxCalls: number;
  faults: FaultKind[];
  faultGap: number;
  seed: number | undefined;
  quiet: boolean;
}

function chaosCommand(): Command {
  const defaults = DEFAULT_CHAOS_OPTIONS;
  return new Command("npm run chaos --")
    .description(
      "Drive SubmitScore under load on loopback while killing gradecast (-9) and NATS (kill -9, " +
        "SIGSTOP), then read the whole stream with a reader of its own: every OK score exactly " +
        "once, nothing unexplained, health SERVING at the end. Runs each chosen form in turn " +
        "(single nats-server or a 3-node JetStream cluster, SQLite or PostgreSQL), prints one " +
        "summary line per form and the totals, and stops by itself.",
    )
    .addOption(
      new Option("--form <form>", "NATS form").choices(["single", "cluster", "all"]).default("all"),
    )
    .addOption(
      new Option("--store <store>", "gradecast's store (PostgreSQL on 127.0.0.1:5432, trust auth)")
        .choices(["sqlite", "postgres", "all"])
        .default("all"),
    )
    .addOption(
      new Option("--duration <duration>", "load and faults per form, e.g. 30s or 2m")
        .argParser(parseDurationMs)
        .default(defaults.durationMs, `${defaults.durationMs / 1_000}s`),
    )
    .option("--concurrency <n>", "most calls in flight", parsePositiveInteger, defaults.concurrency)
    .option(
      "--rate <calls/s>",
      "most calls started per second",
      parsePositiveInteger,
      defaults.maxCallsPerS,
    )
    .option("--max-calls <n>", "most calls per form", parsePositiveInteger, defaults.maxCalls)
    .addOption(
      new Option("--faults <kinds>", "fault kinds, comma-separated")
        .argParser(parseFaultKinds)
        .default([...FAULT_KINDS], FAULT_KINDS.join(",")),
    )
    .addOption(
      new Option("--fault-gap <duration>", "time from one fault's start to the next one's")
        .argParser(parseDurationMs)
        .default(defaults.faults.gapMs, `${defaults.faults.gapMs / 1_000}s`),
    )
    .option(
      "--seed <n>",
      "seed of the fault plan and the call mix (default: random, printed)",
      parseSeed,
    )
    .option("--quiet", "print only the summary, not each fault", false)
    .addHelpText(
      "after",
      "\nExamples:\n  npm run chaos                                   # all four forms, 30 s each\n  npm run chaos -- --form single --store sqlite --duration 20s\n  npm run chaos -- --form cluster --store postgres --duration 2m --seed 7\n",
    )
    .exitOverride((error) => {
      process.exit(error.exitCode === 0 ? 0 : 2);
    });
}

async function main(): Promise<number> {
  const command = chaosCommand();
  command.parse(process.argv);
  const flags = command.opts<ChaosFlags>();
  const seed = flags.seed ?? randomInt(1, 2 ** 31);
  const forms = CHAOS_FORMS.filter(
    (form) =>
      (flags.form === "all" || form.nats === flags.form) &&
      (flags.store === "all" || form.store === flags.store),
  );

  const interrupt = new AbortController();
  let interruptedAtMs = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    // One Ctrl-C arrives twice under npm (from the terminal, and forwarded by npm): only a
    // signal well after the first one means "quit now, leave the clean-up".
    if (interrupt.signal.aborted) {
      if (Date.now() - interruptedAtMs > SAME_INTERRUPT_MS) process.exit(130);
      return;
    }
    interruptedAtMs = Date.now();
    process.stderr.write(`chaos: ${signal}: cleaning up (again to quit at once)\n`);
    interrupt.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  // Its `gradecast serve` children run dist/ (test/helpers/gradecast-process.ts): bring it up
  // to date first, as vitest's global setup does for the suite.
  await buildDist();

  const reports: CampaignReport[] = [];
  for (const form of forms) {
    if (interrupt.signal.aborted) break;
    const report = await runChaosCampaign(
      {
        form,
        seed,
        durationMs: flags.duration,
        concurrency: flags.concurrency,
        maxCallsPerS: flags.rate,
        maxCalls: flags.maxCalls,
        faults: { kinds: flags.faults, gapMs: flags.faultGap },
        log: flags.quiet ? () => {} : (line) => process.stderr.write(`${line}\n`),
      },
      interrupt.signal,
    );
    reports.push(report);
    process.stdout.write(`${formatCampaign(report)}\n`);
  }
  if (reports.length > 1) process.stdout.write(`${formatTotals(reports)}\n`);
  if (interrupt.signal.aborted) return 130;
  return reports.every((report) => report.isPassed) ? 0 : 1;
}

function parseDurationMs(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!match) throw new InvalidArgumentError("expected a duration such as 500ms, 30s or 2m");
  const unitMs = { ms: 1, s: 1_000, m: 60_000 }[(match[2] ?? "s") as "ms" | "s" | "m"];
  const ms = Number(match[1]) * unitMs;
  if (ms <= 0) throw new InvalidArgumentError("must be more than 0");
  return ms;
}

function parsePositiveInteger(text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0)
    throw new InvalidArgumentError("expected an integer > 0");
  return value;
}

function parseSeed(text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value >= 2 ** 32) {
    throw new InvalidArgumentError("expected an integer from 0 to 2^32 - 1");
  }
  return value;
}

function parseFaultKinds(text: string): FaultKind[] {
  const kinds = text.split(",").map((kind) => kind.trim());
  const unknown = kinds.filter((kind) => !FAULT_KINDS.includes(kind as FaultKind));
  if (unknown.length > 0) {
    throw new InvalidArgumentError(
      `unknown ${unknown.join(", ")}; known: ${FAULT_KINDS.join(", ")}`,
    );
  }
  return kinds as FaultKind[];
}

process.exitCode = await main();
