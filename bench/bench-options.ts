// The bench's settings: one typed object, parsed and checked once from the command line.
import { Command, InvalidArgumentError, Option } from "commander";

/** Every setting of a bench run. */
export interface BenchOptions {
  /** Load-generator processes; the load of each scenario is split between them. */
  workers: number;
  /** gRPC channels (TCP connections) across all workers. */
  connections: number;
  /** Calls in flight in the closed loops (SubmitScore and echo), across all workers. */
  inFlight: number;
  /** Calls of each closed loop. */
  closedLoopCalls: number;
  /** Unreported closed-loop calls first, to warm JIT, connections and the store. */
  warmupCalls: number;
  /** Offered rates of the open loops, calls/s. */
  openLoopRatesPerS: number[];
  /** How long each open loop offers its rate. */
  openLoopDurationS: number;
  /** Scores accepted while NATS is down, then drained from the outbox. */
  drainCalls: number;
  /** Messages of the raw JetStream publish baseline. */
  publishMessages: number;
  /** Publishes in flight in the raw JetStream baseline. */
  publishInFlight: number;
  /** Bound on each closed loop and on each wait (for events, for the drain). */
  scenarioTimeLimitS: number;
  /** `serve --store` value; unset: SQLite in the bench's temp dir. */
  store: string | undefined;
  /** Scores (with their published outbox rows) put in the store before `serve` starts. */
  preload: number;
  /** More `serve` flags, e.g. `--publish-wait 0ms`. */
  serveArgs: string[];
  /** Node flags of the gradecast process, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`. */
  serverNodeArgs: string[];
  /** Where to write the figures as JSON; unset: nowhere. */
  jsonPath: string | undefined;
  /** The short variant (see QUICK_DEFAULTS). */
  isQuick: boolean;
}

type Sized = Pick<
  BenchOptions,
  | "workers"
  | "connections"
  | "inFlight"
  | "closedLoopCalls"
  | "warmupCalls"
  | "openLoopRatesPerS"
  | "openLoopDurationS"
  | "drainCalls"
  | "publishMessages"
  | "publishInFlight"
  | "scenarioTimeLimitS"
>;

/** The full run (issue 7's scenarios). */
export const FULL_DEFAULTS: Readonly<Sized> = Object.freeze({
  workers: 2,
  connections: 2,
  inFlight: 64,
  closedLoopCalls: 20_000,
  warmupCalls: 2_000,
  openLoopRatesPerS: [500, 2_000],
  openLoopDurationS: 10,
  drainCalls: 20_000,
  publishMessages: 20_000,
  publishInFlight: 256,
  scenarioTimeLimitS: 120,
});

/** `--quick`: every scenario, small, well under a minute (a smoke test, not a measurement). */
export const QUICK_DEFAULTS: Readonly<Sized> = Object.freeze({
  ...FULL_DEFAULTS,
  closedLoopCalls: 2_000,
  warmupCalls: 200,
  openLoopDurationS: 2,
  drainCalls: 2_000,
  publishMessages: 2_000,
  scenarioTimeLimitS: 30,
});

interface BenchFlags {
  quick?: boolean;
  workers?: number;
  connections?: number;
  inFlight?: number;
  calls?: number;
  warmupCalls?: number;
  rates?: number[];
  duration?: number;
  drainCalls?: number;
  publishMessages?: number;
  publishInFlight?: number;
  timeLimit?: number;
  store?: string;
  preload?: number;
  serveArgs?: string;
  serverNodeArgs?: string;
  json?: string;
}

/** A commander parser for counts given on the command line. */
export function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 1) {
    throw new InvalidArgumentError("expected a whole number >= 1");
  }
  return parsed;
}

function nonNegativeInteger(value: string): number {
  const parsed = Number(value.replaceAll("_", ""));
  if (!Number.isSafeInteger(parsed) || parsed < 0) {
    throw new InvalidArgumentError("expected a whole number >= 0");
  }
  return parsed;
}

function positiveNumber(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0)
    throw new InvalidArgumentError("expected a number > 0");
  return parsed;
}

function rateList(value: string): number[] {
  return value.split(",").map((rate) => positiveNumber(rate.trim()));
}

/**
 * The heap limits the README recommends for `serve`: without them V8 sizes the heap to the
 * machine's memory and lets garbage pile up, so RSS says little about what the service needs.
 * An 8 MB semi-space (Node 20's default is 16) took 6 to 17 MB off the peak RSS at the same CPU;
 * 4 MB took about 15 MB more and cost 10 to 15% more CPU per call (README, Performance).
 */
const DEFAULT_SERVER_NODE_ARGS = "--max-old-space-size=128 --max-semi-space-size=8";

const words = (value: string | undefined) => (value ?? "").split(" ").filter(Boolean);

/**
 * Parses the bench's command line (`argv` without node and the script) into options.
 * Flags left out take the full or, with --quick, the quick defaults. Throws CommanderError on
 * bad usage (already printed) and on --help (printed, exit code 0).
 */
export function parseBenchOptions(argv: readonly string[]): BenchOptions {
  const full = FULL_DEFAULTS;
  const command = new Command("gradecast bench")
    .description(
      "Measure SubmitScore against its limits: starts nats-server, gradecast serve (SQLite in a " +
        "temp dir), an echo server and load-generator processes, runs every scenario, prints a " +
        "table (ratios last) and optionally writes the figures as JSON.",
    )
    .option("--quick", "a short run of every scenario (under a minute; figures not meaningful)")
    .option("--workers <n>", `load-generator processes (${full.workers})`, positiveInteger)
    .option("--connections <n>", `gRPC connections in all (${full.connections})`, positiveInteger)
    .option("--in-flight <n>", `closed-loop calls in flight (${full.inFlight})`, positiveInteger)
    .option("--calls <n>", `calls per closed loop (${full.closedLoopCalls})`, positiveInteger)
    .option("--warmup-calls <n>", `unreported warm-up calls (${full.warmupCalls})`, positiveInteger)
    .option(
      "--rates <list>",
      `open-loop offered rates, calls/s (${full.openLoopRatesPerS.join(",")})`,
      rateList,
    )
    .option(
      "--duration <s>",
      `seconds per open-loop rate (${full.openLoopDurationS})`,
      positiveNumber,
    )
    .option(
      "--drain-calls <n>",
      `scores drained from the outbox (${full.drainCalls})`,
      positiveInteger,
    )
    .option(
      "--publish-messages <n>",
      `raw JetStream publishes (${full.publishMessages})`,
      positiveInteger,
    )
    .option(
      "--publish-in-flight <n>",
      `raw JetStream publishes in flight (${full.publishInFlight})`,
      positiveInteger,
    )
    .option(
      "--time-limit <s>",
      `bound on each closed loop and each wait (${full.scenarioTimeLimitS})`,
      positiveNumber,
    )
    .option("--store <value>", "serve --store (default: SQLite in the bench's temp dir)")
    .option(
      "--preload <n>",
      "scores (with published outbox rows) stored before serve starts, e.g. 1_000_000 (0)",
      nonNegativeInteger,
    )
    .addOption(
      new Option("--serve-args <flags>", "more serve flags, space-separated").env(
        "GRADECAST_SERVE_ARGS",
      ),
    )
    .addOption(
      new Option(
        "--server-node-args <flags>",
        `node flags of the gradecast process, e.g. --cpu-prof (default: ${DEFAULT_SERVER_NODE_ARGS})`,
      ).env("GRADECAST_NODE_ARGS"),
    )
    .option("--json <path>", "write the figures as JSON to this file")
    .allowExcessArguments(false)
    .exitOverride()
    .parse(argv, { from: "user" });
  const flags = command.opts<BenchFlags>();
  const sized = flags.quick ? QUICK_DEFAULTS : FULL_DEFAULTS;
  return {
    workers: flags.workers ?? sized.workers,
    connections: flags.connections ?? sized.connections,
    inFlight: flags.inFlight ?? sized.inFlight,
    closedLoopCalls: flags.calls ?? sized.closedLoopCalls,
    warmupCalls: flags.warmupCalls ?? sized.warmupCalls,
    openLoopRatesPerS: flags.rates ?? [...sized.openLoopRatesPerS],
    openLoopDurationS: flags.duration ?? sized.openLoopDurationS,
    drainCalls: flags.drainCalls ?? sized.drainCalls,
    publishMessages: flags.publishMessages ?? sized.publishMessages,
    publishInFlight: flags.publishInFlight ?? sized.publishInFlight,
    scenarioTimeLimitS: flags.timeLimit ?? sized.scenarioTimeLimitS,
    store: flags.store,
    preload: flags.preload ?? 0,
    serveArgs: words(flags.serveArgs),
    serverNodeArgs: words(flags.serverNodeArgs ?? DEFAULT_SERVER_NODE_ARGS),
    jsonPath: flags.json,
    isQuick: flags.quick === true,
  };
}
