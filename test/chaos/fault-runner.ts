import type { NatsServerHandle } from "../helpers/nats-server.js";
import { pause } from "./abortable-pause.js";
import type { FaultKind } from "./chaos-options.js";
import type { NatsTarget, PlannedFault } from "./fault-plan.js";
import type { GradecastSupervisor } from "./gradecast-supervisor.js";
import type { NatsTopology } from "./nats-topology.js";

/** A fault as it happened; times are ms from the start of the load. */
export interface FaultRecord {
  readonly kind: FaultKind;
  /** NATS faults: which server, and why that one. */
  readonly node: string | undefined;
  readonly target: NatsTarget | undefined;
  /** NATS faults: the server held gradecast's connection when the fault began. */
  readonly isGradecastsNode: boolean | undefined;
  readonly startedAtMs: number;
  /** When the victim was back: gradecast answering, or NATS healthy (a cluster whole). */
  readonly recoveredAtMs: number;
}

/** What the faults act on. */
export interface FaultRunnerContext {
  readonly gradecast: GradecastSupervisor;
  readonly nats: NatsTopology;
  /** gradecast's NATS connection name, to find the node it is connected to. */
  readonly gradecastClientName: string;
  /** `Date.now()` when the load started; the plan's times count from here. */
  readonly loadStartMs: number;
  /** How long a NATS server or cluster may take to be whole again. */
  readonly recoveryTimeoutMs: number;
  readonly signal: AbortSignal;
  readonly log: (line: string) => void;
}

/** Finding the node gradecast is on polls monitoring; past this, hit another node instead. */
const CONNECTED_NODE_TIMEOUT_MS = 10_000;
/** Only to say whether the victim was gradecast's node: not worth holding the fault back for. */
const HOLDER_LOOKUP_TIMEOUT_MS = 1_000;

/**
 * Runs the plan's faults one after another, each at its time (or at once when recoveries put
 * the plan behind: the load goes on until the last one is over), and brings every victim back
 * before the next; on abort it stops injecting but still
 * brings back what is down. Rejects when a victim cannot be brought back.
 */
export async function runFaults(
  plan: readonly PlannedFault[],
  context: FaultRunnerContext,
): Promise<FaultRecord[]> {
  const records: FaultRecord[] = [];
  const sinceStart = () => Date.now() - context.loadStartMs;
  for (const fault of plan) {
    const waitMs = fault.atMs - sinceStart();
    if (waitMs > 0) await pause(waitMs, context.signal);
    if (context.signal.aborted) break;
    const startedAtMs = sinceStart();
    if (fault.kind === "gradecast-kill9") {
      await context.gradecast.kill9();
      context.log(`${(startedAtMs / 1_000).toFixed(1)} s: kill -9 gradecast`);
      await pause(fault.holdMs, context.signal);
      await context.gradecast.start();
      records.push({
        kind: fault.kind,
        node: undefined,
        target: undefined,
        isGradecastsNode: undefined,
        startedAtMs,
        recoveredAtMs: sinceStart(),
      });
      continue;
    }
    const node = await victimOf(fault.target, context);
    records.push(...(await natsFault(fault, node, context, startedAtMs)));
  }
  return records;
}

/** One NATS fault, and gradecast's death during it when the plan says so. */
async function natsFault(
  fault: PlannedFault,
  node: NatsServerHandle,
  context: FaultRunnerContext,
  startedAtMs: number,
): Promise<FaultRecord[]> {
  const sinceStart = () => Date.now() - context.loadStartMs;
  const records: FaultRecord[] = [];
  const verb = fault.kind === "nats-kill9" ? "kill -9" : "SIGSTOP";
  const holder = await context.nats
    .nodeFor("connected", context.gradecastClientName, HOLDER_LOOKUP_TIMEOUT_MS)
    // Nobody holds it while gradecast is between connections: then the victim is not its node.
    .catch(() => undefined);
  const isGradecastsNode = holder === node;
  context.log(
    `${(startedAtMs / 1_000).toFixed(1)} s: ${verb} ${node.serverName} (${fault.target}${isGradecastsNode ? ", gradecast's node" : ""}) for ${fault.holdMs} ms${fault.isGradecastKilledToo ? ", and kill -9 gradecast meanwhile" : ""}`,
  );
  if (fault.kind === "nats-kill9") await node.kill();
  else node.pause();
  try {
    if (fault.isGradecastKilledToo) {
      await pause(fault.holdMs / 2, context.signal);
      const killedAtMs = sinceStart();
      await context.gradecast.kill9();
      await context.gradecast.start();
      records.push({
        kind: "gradecast-kill9",
        node: undefined,
        target: undefined,
        isGradecastsNode: undefined,
        startedAtMs: killedAtMs,
        recoveredAtMs: sinceStart(),
      });
      await pause(startedAtMs + fault.holdMs - sinceStart(), context.signal);
    } else {
      await pause(fault.holdMs, context.signal);
    }
  } finally {
    if (fault.kind === "nats-kill9") await node.restart();
    else node.resume();
  }
  await context.nats.waitUntilWhole(context.recoveryTimeoutMs);
  records.push({
    kind: fault.kind,
    node: node.serverName,
    target: fault.target,
    isGradecastsNode,
    startedAtMs,
    recoveredAtMs: sinceStart(),
  });
  return records;
}

async function victimOf(
  target: NatsTarget,
  context: FaultRunnerContext,
): Promise<NatsServerHandle> {
  const name = context.gradecastClientName;
  if (target !== "connected") return context.nats.nodeFor(target, name, context.recoveryTimeoutMs);
  try {
    return await context.nats.nodeFor(target, name, CONNECTED_NODE_TIMEOUT_MS);
  } catch (error) {
    // gradecast may be between connections right now: then any node will do.
    context.log(
      `no node holds gradecast's connection (${String(error).split("\n")[0]}); hitting another one`,
    );
    return context.nats.nodeFor("any", name, context.recoveryTimeoutMs);
  }
}
