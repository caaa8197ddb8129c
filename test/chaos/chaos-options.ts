/** Where the NATS side of a campaign runs: one server, or a 3-node JetStream cluster (R3). */
export type ChaosNatsForm = "single" | "cluster";

/** The store gradecast keeps scores and its outbox in. */
export type ChaosStoreKind = "sqlite" | "postgres";

/** One of the four set-ups a campaign runs against. */
export interface ChaosForm {
  readonly nats: ChaosNatsForm;
  readonly store: ChaosStoreKind;
}

/** What the campaign does to the system under load. */
export type FaultKind = "gradecast-kill9" | "nats-kill9" | "nats-stop";

export const FAULT_KINDS: readonly FaultKind[] = Object.freeze([
  "gradecast-kill9",
  "nats-kill9",
  "nats-stop",
]);

/** Every form, in the order `npm run chaos` runs them. */
export const CHAOS_FORMS: readonly ChaosForm[] = Object.freeze([
  { nats: "single", store: "sqlite" },
  { nats: "single", store: "postgres" },
  { nats: "cluster", store: "sqlite" },
  { nats: "cluster", store: "postgres" },
]);

/** `single+sqlite`, as summaries name a form. */
export function formName(form: ChaosForm): string {
  return `${form.nats}+${form.store}`;
}

/** When faults happen and how long each lasts; every range is `[min, max]` in ms. */
export interface FaultScheduleOptions {
  /** The kinds to inject, taken in turns so each one gets its share. */
  readonly kinds: readonly FaultKind[];
  /** From one fault's start to the next one's (plus up to 30 % jitter). */
  readonly gapMs: number;
  /** No fault before this, so the load is running when the first one lands. */
  readonly warmupMs: number;
  /** How long gradecast stays dead after a kill -9 before it is started again. */
  readonly gradecastDownMs: readonly [number, number];
  /** How long a killed NATS server stays dead before it is restarted. */
  readonly natsDownMs: readonly [number, number];
  /** How long a NATS server stays stopped (SIGSTOP) before SIGCONT. */
  readonly natsStopMs: readonly [number, number];
  /** Chance that gradecast is also killed while NATS is down or stalled ("both at once"). */
  readonly overlapChance: number;
}

/** One campaign against one form. */
export interface ChaosOptions {
  readonly form: ChaosForm;
  /**
   * How long the load and the faults run (the load goes on past it until the last planned fault
   * is over); then the campaign settles and judges.
   */
  readonly durationMs: number;
  /** Most SubmitScore calls in flight at once. */
  readonly concurrency: number;
  /** Most calls started per second (first attempts; retries of a failed call come on top). */
  readonly maxCallsPerS: number;
  /** Most calls in all, whatever the duration. */
  readonly maxCalls: number;
  /** Share of calls that resend the accepted score of a submission unchanged (a retry). */
  readonly retryShare: number;
  /** Share of calls that change the accepted score of a submission (a regrade). */
  readonly regradeShare: number;
  readonly faults: FaultScheduleOptions;
  /** Seeds the fault plan and the mix of calls. */
  readonly seed: number;
  /** Deadline of one SubmitScore attempt. */
  readonly callDeadlineMs: number;
  /** How long one call keeps retrying UNAVAILABLE and friends before it counts as unanswered. */
  readonly callRetryMs: number;
  /** How long gradecast and NATS may take to start (and restart). */
  readonly startTimeoutMs: number;
  /** After the load: how long until every OK event is in the stream and nothing is pending. */
  readonly settleTimeoutMs: number;
  /** After the load: how long until health says SERVING. */
  readonly servingTimeoutMs: number;
  /** Progress lines (faults, phases); the summary is the caller's to print. */
  readonly log: (line: string) => void;
}

/** A campaign of about half a minute per form on a 2-core machine. */
export const DEFAULT_CHAOS_OPTIONS: ChaosOptions = Object.freeze({
  form: CHAOS_FORMS[0] as ChaosForm,
  durationMs: 30_000,
  concurrency: 16,
  maxCallsPerS: 200,
  maxCalls: 50_000,
  retryShare: 0.1,
  regradeShare: 0.1,
  faults: Object.freeze({
    kinds: FAULT_KINDS,
    gapMs: 4_000,
    warmupMs: 2_000,
    gradecastDownMs: [0, 500] as const,
    natsDownMs: [500, 3_000] as const,
    natsStopMs: [500, 3_000] as const,
    overlapChance: 0.25,
  }),
  seed: 1,
  callDeadlineMs: 10_000,
  callRetryMs: 90_000,
  startTimeoutMs: 60_000,
  settleTimeoutMs: 60_000,
  servingTimeoutMs: 30_000,
  log: () => {},
});

/** What a caller may change; `faults` merges field by field. */
export type ChaosOptionsInput = Partial<Omit<ChaosOptions, "faults">> & {
  faults?: Partial<FaultScheduleOptions>;
};

/** Merges `input` over the defaults once and checks the result, so the campaign trusts it. */
export function makeChaosOptions(input: ChaosOptionsInput = {}): ChaosOptions {
  const options: ChaosOptions = {
    ...DEFAULT_CHAOS_OPTIONS,
    ...definedOnly(input),
    faults: { ...DEFAULT_CHAOS_OPTIONS.faults, ...definedOnly(input.faults ?? {}) },
  };
  const problems = chaosOptionProblems(options);
  if (problems.length > 0) throw new RangeError(`bad chaos options: ${problems.join("; ")}`);
  return options;
}

/** An unset field (`undefined`) keeps its default instead of erasing it. */
function definedOnly<T extends object>(input: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(input).filter(([, value]) => value !== undefined),
  ) as Partial<T>;
}

function chaosOptionProblems(options: ChaosOptions): string[] {
  const problems: string[] = [];
  const positive = (name: string, value: number) => {
    if (!Number.isFinite(value) || value <= 0) problems.push(`${name} must be > 0 (got ${value})`);
  };
  positive("durationMs", options.durationMs);
  positive("concurrency", options.concurrency);
  positive("maxCallsPerS", options.maxCallsPerS);
  positive("maxCalls", options.maxCalls);
  positive("callDeadlineMs", options.callDeadlineMs);
  positive("callRetryMs", options.callRetryMs);
  positive("faults.gapMs", options.faults.gapMs);
  if (!Number.isInteger(options.concurrency)) problems.push("concurrency must be an integer");
  const shares = options.retryShare + options.regradeShare;
  if (options.retryShare < 0 || options.regradeShare < 0 || shares >= 1) {
    problems.push("retryShare and regradeShare must be >= 0 and add up to less than 1");
  }
  for (const [name, [min, max]] of [
    ["gradecastDownMs", options.faults.gradecastDownMs],
    ["natsDownMs", options.faults.natsDownMs],
    ["natsStopMs", options.faults.natsStopMs],
  ] as const) {
    if (!(min >= 0 && max >= min))
      problems.push(`faults.${name} must be [min, max] with 0 <= min <= max`);
  }
  if (options.faults.overlapChance < 0 || options.faults.overlapChance > 1) {
    problems.push("faults.overlapChance must be in [0, 1]");
  }
  for (const kind of options.faults.kinds) {
    if (!FAULT_KINDS.includes(kind)) problems.push(`unknown fault kind ${JSON.stringify(kind)}`);
  }
  return problems;
}
