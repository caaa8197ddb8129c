import { type NatsClusterHandle, startNatsCluster } from "../helpers/nats-cluster.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";
import type { ChaosNatsForm } from "./chaos-options.js";
import type { NatsTarget } from "./fault-plan.js";

/** The NATS servers of one campaign, whichever form they take. */
export interface NatsTopology {
  readonly form: ChaosNatsForm;
  /** Every client URL, comma-joined, for `--nats-url` and the stream reader. */
  readonly urls: string;
  /** How many copies of the stream to ask for (`--replicas`). */
  readonly replicas: number;
  /**
   * The server a NATS fault of `target` hits; `clientName` is gradecast's connection name.
   * Rejects when no server fits within `timeoutMs` (no meta leader, nobody holds the client).
   */
  nodeFor(target: NatsTarget, clientName: string, timeoutMs: number): Promise<NatsServerHandle>;
  /**
   * Resolves once the servers are whole again after a fault (in a cluster: every node healthy
   * and agreeing on a meta leader), so the next fault never takes a second node of three.
   */
  waitUntilWhole(timeoutMs: number): Promise<void>;
  /** Resumes, stops and removes whatever the servers hold. */
  cleanup(): Promise<void>;
  /** The servers' last output lines, for failure messages. */
  output(): string;
}

/** Starts the NATS side of a campaign: one `nats-server -js`, or three routed to each other. */
export async function startNatsTopology(
  form: ChaosNatsForm,
  readyTimeoutMs: number,
): Promise<NatsTopology> {
  return form === "single"
    ? singleServer(await startNatsServer({ readyTimeoutMs }))
    : clusterOfThree(await startNatsCluster({ readyTimeoutMs }));
}

function singleServer(server: NatsServerHandle): NatsTopology {
  return {
    form: "single",
    urls: server.url,
    replicas: 1,
    nodeFor: async () => server,
    // restart() returns once /healthz is ok: nothing more to wait for.
    waitUntilWhole: async () => {},
    cleanup: async () => {
      server.resume();
      await server.cleanup();
    },
    output: () => server.output(),
  };
}

function clusterOfThree(cluster: NatsClusterHandle): NatsTopology {
  let nextAny = 0;
  return {
    form: "cluster",
    urls: cluster.urls,
    replicas: 3,
    nodeFor: async (target, clientName, timeoutMs) => {
      switch (target) {
        case "meta-leader":
          return cluster.metaLeader(timeoutMs);
        case "connected":
          return cluster.connectedNode(clientName, timeoutMs);
        case "any": {
          // Round robin rather than random: the plan's seed already decides when "any" comes.
          const node = cluster.nodes[nextAny % cluster.nodes.length] as NatsServerHandle;
          nextAny += 1;
          return node;
        }
      }
    },
    waitUntilWhole: (timeoutMs) => cluster.waitUntilHealthy(timeoutMs),
    cleanup: async () => {
      for (const node of cluster.nodes) node.resume();
      await cluster.cleanup();
    },
    output: () => cluster.output(),
  };
}
