import type { ChaosNatsForm, FaultKind, FaultScheduleOptions } from "./chaos-options.js";
import type { SeededRandom } from "./seeded-random.js";

/**
 * Which NATS node a NATS fault hits. In a cluster the interesting ones are the JetStream meta
 * leader and the node gradecast is connected to (the failover case is both at once);
 * `any` is a node picked at random. A single server is every target.
 */
export type NatsTarget = "meta-leader" | "connected" | "any";

/** One fault of the plan, in time from the start of the load. */
export interface PlannedFault {
  readonly kind: FaultKind;
  readonly atMs: number;
  /** How long the victim stays dead or stopped. */
  readonly holdMs: number;
  /** NATS faults only. */
  readonly target: NatsTarget;
  /** NATS faults only: gradecast is also killed (and restarted) while NATS is down or stalled. */
  readonly isGradecastKilledToo: boolean;
}

/** Faults must be over this long before the load stops, so the last one happens under load. */
const TAIL_MS = 1_000;
const CLUSTER_TARGETS: readonly NatsTarget[] = ["meta-leader", "connected", "any"];

/**
 * The faults of one campaign: kinds in turns (each round shuffled), one every `gapMs` plus
 * jitter after the warm-up, each over before the load ends. Deterministic for a seed.
 */
export function planFaults(
  durationMs: number,
  schedule: FaultScheduleOptions,
  natsForm: ChaosNatsForm,
  random: SeededRandom,
): PlannedFault[] {
  const plan: PlannedFault[] = [];
  if (schedule.kinds.length === 0) return plan;
  let kinds: FaultKind[] = [];
  let targets: NatsTarget[] = [];
  for (let slot = 0; ; slot += 1) {
    const atMs =
      schedule.warmupMs + slot * schedule.gapMs + random.integer(0, schedule.gapMs * 0.3);
    if (kinds.length === 0) kinds = random.shuffle(schedule.kinds);
    const kind = kinds.pop() as FaultKind;
    const holdMs = random.integer(...holdRange(kind, schedule));
    if (atMs + holdMs > durationMs - TAIL_MS) break;
    let target: NatsTarget = "any";
    if (kind !== "gradecast-kill9" && natsForm === "cluster") {
      if (targets.length === 0) targets = random.shuffle(CLUSTER_TARGETS);
      target = targets.pop() as NatsTarget;
    }
    const isGradecastKilledToo =
      kind !== "gradecast-kill9" && random.chance(schedule.overlapChance);
    plan.push({ kind, atMs, holdMs, target, isGradecastKilledToo });
  }
  return plan;
}

function holdRange(kind: FaultKind, schedule: FaultScheduleOptions): readonly [number, number] {
  switch (kind) {
    case "gradecast-kill9":
      return schedule.gradecastDownMs;
    case "nats-kill9":
      return schedule.natsDownMs;
    case "nats-stop":
      return schedule.natsStopMs;
  }
}
