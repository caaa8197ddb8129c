/**
 * A 3-node JetStream cluster of real `nats-server` processes on 127.0.0.1, for tests that kill,
 * stall and restart nodes under load.
 *
 * ```ts
 * const cluster = await startNatsCluster();      // resolves once all 3 are JetStream-ready
 * cluster.urls;                                  // "nats://127.0.0.1:a,nats://127.0.0.1:b,..."
 * const [a, b, c] = cluster.nodes;               // NatsServerHandle each: url, serverName,
 *                                                // monitorUrl, kill(), restart(), pause(), resume()
 * const leader = await cluster.metaLeader();     // the node that is JetStream meta leader now
 * const node = await cluster.connectedNode("gradecast test-host"); // where a named client is
 * await cluster.stepDownMetaLeader();            // moves the meta leader (to a random node)
 * await leader.kill();                           // SIGKILL; restart() brings it back in place
 * await cluster.waitUntilHealthy();              // running nodes healthy, a meta leader agreed
 * await cluster.cleanup();                       // stops every node, removes store and config
 * ```
 *
 * Each node runs with a config file holding its `cluster { routes: [...] }` block, and keeps its
 * client, cluster and monitoring ports and its store dir across restarts. Clients connect
 * without credentials (`no_auth_user`) to an account with JetStream; the harness keeps a system
 * account user for itself, to move the meta leader.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { connect } from "@nats-io/transport-node";
import { findFreePort } from "./child-process.js";
import {
  type NatsServerHandle,
  NatsServerHarnessError,
  type NatsServerOptions,
  startNatsServer,
} from "./nats-server.js";

/** How to start the cluster; every node gets the same options. */
export interface NatsClusterOptions {
  /** More nats-server config lines for every node, e.g. `max_payload: 65536`. */
  extraConfig?: string;
  /** More nats-server arguments for every node (not `-c`: each node has its config file). */
  extraArgs?: readonly string[];
  /** Called with every output line of every node, prefixed with the node's server name. */
  onOutputLine?: (line: string) => void;
  /** How long one node may take to become healthy at start and on each restart. */
  readyTimeoutMs?: number;
}

/** The three nodes of a running cluster and ways to find the meta leader and a client's node. */
export interface NatsClusterHandle {
  readonly nodes: readonly [NatsServerHandle, NatsServerHandle, NatsServerHandle];
  /** Every node's client URL, comma-joined, e.g. for `--nats-url`. */
  readonly urls: string;
  /**
   * The running node that says it is the JetStream meta leader, polled until one does (an
   * election follows a leader's death) or `timeoutMs` has passed (then it rejects).
   */
  metaLeader(timeoutMs?: number): Promise<NatsServerHandle>;
  /**
   * The running node that holds a client connection named `clientName` (its nats.js `name`),
   * polled until one does or `timeoutMs` has passed (then it rejects).
   */
  connectedNode(clientName: string, timeoutMs?: number): Promise<NatsServerHandle>;
  /**
   * Asks the meta leader to step down (`$JS.API.META.LEADER.STEPDOWN`, as the system account)
   * and resolves with the node elected instead, a random other one.
   */
  stepDownMetaLeader(timeoutMs?: number): Promise<NatsServerHandle>;
  /**
   * Resolves once every running node's `/healthz` is ok and all of them name the same running
   * meta leader (not while a node is paused: it never answers).
   */
  waitUntilHealthy(timeoutMs?: number): Promise<void>;
  /** Stops every node and removes their store dirs and config files. */
  cleanup(): Promise<void>;
  /** The last output lines of every node, for failure messages. */
  output(): string;
}

const NODE_COUNT = 3;
const CLUSTER_NAME = "gradecast-test";
/** The system account's user, for JetStream administration only this harness does. */
const SYSTEM_USER = { user: "cluster-harness", pass: "cluster-harness-system" };
/** Three servers that must find each other and elect a leader: more than a lone server's 10 s. */
const DEFAULT_READY_TIMEOUT_MS = 30_000;
const DEFAULT_WAIT_MS = 30_000;
const POLL_INTERVAL_MS = 100;
/** A paused (SIGSTOPped) node never answers: give up on it quickly and ask the others. */
const MONITOR_REQUEST_TIMEOUT_MS = 1_000;

/** Starts three JetStream nodes routed to each other and waits until they have a meta leader. */
export async function startNatsCluster(
  options: NatsClusterOptions = {},
): Promise<NatsClusterHandle> {
  const ports = await distinctFreePorts(NODE_COUNT * 3);
  const clientPorts = ports.slice(0, NODE_COUNT);
  const clusterPorts = ports.slice(NODE_COUNT, NODE_COUNT * 2);
  const monitorPorts = ports.slice(NODE_COUNT * 2);
  const routeUrl = (index: number) => `nats://127.0.0.1:${clusterPorts[index]}`;
  const readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const configDir = await mkdtemp(join(tmpdir(), "gradecast-nats-cluster-"));

  // All at once: a node is healthy only when it knows a meta leader, which needs a quorum.
  const started = await Promise.allSettled(
    clientPorts.map(async (port, index) => {
      const routes = clusterPorts.flatMap((_, other) => (other === index ? [] : [routeUrl(other)]));
      const configPath = join(configDir, `node-${index + 1}.conf`);
      await writeFile(
        configPath,
        nodeConfig(`127.0.0.1:${clusterPorts[index]}`, routes, options.extraConfig),
      );
      const nodeOptions: NatsServerOptions = {
        port,
        monitorPort: monitorPorts[index],
        readyTimeoutMs,
        extraArgs: ["-c", configPath, ...(options.extraArgs ?? [])],
        ...(options.onOutputLine
          ? { onOutputLine: prefixed(`gradecast-nats-${port}`, options.onOutputLine) }
          : {}),
      };
      return startNatsServer(nodeOptions);
    }),
  );
  const nodes = started.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
  const failure = started.find((result) => result.status === "rejected");
  if (failure || nodes.length !== NODE_COUNT) {
    await Promise.allSettled(nodes.map((node) => node.cleanup()));
    await rm(configDir, { recursive: true, force: true });
    throw new NatsServerHarnessError("the JetStream cluster did not start", {
      cause: failure?.reason,
    });
  }
  const [first, second, third] = nodes as [NatsServerHandle, NatsServerHandle, NatsServerHandle];
  const cluster = clusterHandle([first, second, third], configDir);
  try {
    await cluster.waitUntilHealthy(readyTimeoutMs);
  } catch (error) {
    await cluster.cleanup();
    throw error;
  }
  return cluster;
}

/**
 * One node's config: the cluster block, and accounts so that clients need no credentials while
 * the harness has a system account user. Ports, name and store dir come as flags.
 */
function nodeConfig(clusterListen: string, routes: readonly string[], extraConfig = ""): string {
  return `cluster {
  name: ${CLUSTER_NAME}
  listen: "${clusterListen}"
  routes: [${routes.map((route) => JSON.stringify(route)).join(", ")}]
}
accounts {
  SYS: { users: [{ user: "${SYSTEM_USER.user}", password: "${SYSTEM_USER.pass}" }] }
  APP: { jetstream: enabled, users: [{ user: "app", password: "app-in-tests" }] }
}
system_account: SYS
no_auth_user: app
${extraConfig}
`;
}

function clusterHandle(
  nodes: readonly [NatsServerHandle, NatsServerHandle, NatsServerHandle],
  configDir: string,
): NatsClusterHandle {
  const output = () =>
    nodes.map((node) => `=== ${node.serverName} (${node.url})\n${node.output()}`).join("\n");
  const running = () => nodes.filter((node) => node.isRunning);

  const findMetaLeader = async (): Promise<NatsServerHandle | undefined> => {
    const leaders = await Promise.all(
      running().map(async (node) => {
        const jsz = await monitorJson<JszReply>(node, "/jsz");
        // The leader's own word: a follower may still name a leader that just died.
        return jsz?.meta_cluster?.leader === node.serverName ? node : undefined;
      }),
    );
    return leaders.find((node) => node !== undefined);
  };

  /** The leader every running node names, once all are healthy and agree; else undefined. */
  const findAgreedLeader = async (): Promise<NatsServerHandle | undefined> => {
    const nodesUp = running();
    const answers = await Promise.all(
      nodesUp.map(async (node) => ({
        healthz: await monitorJson<HealthzReply>(node, "/healthz"),
        jsz: await monitorJson<JszReply>(node, "/jsz"),
      })),
    );
    if (!answers.every(({ healthz }) => healthz?.status === "ok")) return undefined;
    const named = new Set(answers.map(({ jsz }) => jsz?.meta_cluster?.leader));
    const [leaderName] = named;
    if (named.size !== 1 || !leaderName) return undefined;
    return nodesUp.find((node) => node.serverName === leaderName);
  };

  return {
    nodes,
    urls: nodes.map((node) => node.url).join(","),
    metaLeader: (timeoutMs = DEFAULT_WAIT_MS) =>
      pollFor("a JetStream meta leader", timeoutMs, findMetaLeader, output),
    connectedNode: (clientName, timeoutMs = DEFAULT_WAIT_MS) =>
      pollFor(
        `the node client ${JSON.stringify(clientName)} is connected to`,
        timeoutMs,
        async () => {
          const holders = await Promise.all(
            running().map(async (node) => {
              const connz = await monitorJson<ConnzReply>(node, "/connz?limit=4096");
              return connz?.connections?.some((connection) => connection.name === clientName)
                ? node
                : undefined;
            }),
          );
          return holders.find((node) => node !== undefined);
        },
        output,
      ),
    waitUntilHealthy: async (timeoutMs = DEFAULT_WAIT_MS) => {
      await pollFor(
        "every running node healthy with a meta leader",
        timeoutMs,
        findAgreedLeader,
        output,
      );
    },
    stepDownMetaLeader: async (timeoutMs = DEFAULT_WAIT_MS) => {
      const leader = await pollFor("a JetStream meta leader", timeoutMs, findMetaLeader, output);
      const connection = await connect({ servers: leader.url, ...SYSTEM_USER });
      try {
        const reply = await connection.request("$JS.API.META.LEADER.STEPDOWN", "", {
          timeout: timeoutMs,
        });
        const answer = reply.json<{ success?: boolean; error?: { description?: string } }>();
        if (answer.success !== true) {
          throw new NatsServerHarnessError(
            `the meta leader ${leader.serverName} did not step down: ${JSON.stringify(answer)}`,
          );
        }
      } finally {
        await connection.close();
      }
      return pollFor(
        `a meta leader other than ${leader.serverName}`,
        timeoutMs,
        async () => {
          const now = await findMetaLeader();
          return now === leader ? undefined : now;
        },
        output,
      );
    },
    cleanup: async () => {
      await Promise.allSettled(nodes.map((node) => node.cleanup()));
      await rm(configDir, { recursive: true, force: true });
    },
    output,
  };
}

interface JszReply {
  meta_cluster?: { leader?: string };
}

interface HealthzReply {
  status?: string;
}

interface ConnzReply {
  connections?: { name?: string }[];
}

/**
 * GETs a monitoring endpoint of `node`: its JSON, or undefined when the node does not answer in
 * time (paused, just killed, still starting) or answers with something else.
 */
async function monitorJson<T>(node: NatsServerHandle, path: string): Promise<T | undefined> {
  try {
    const response = await fetch(`${node.monitorUrl}${path}`, {
      signal: AbortSignal.timeout(MONITOR_REQUEST_TIMEOUT_MS),
    });
    // /healthz answers 503 with a JSON reason while a node catches up: that is an answer too.
    return (await response.json()) as T;
  } catch (error) {
    if (error instanceof Error) return undefined;
    throw error;
  }
}

async function pollFor<T>(
  what: string,
  timeoutMs: number,
  find: () => Promise<T | undefined>,
  output: () => string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await find();
    if (found !== undefined) return found;
    if (Date.now() >= deadline) {
      throw new NatsServerHarnessError(`no ${what} within ${timeoutMs} ms:\n${output()}`);
    }
    await delay(POLL_INTERVAL_MS);
  }
}

/** `count` free ports, all different (two quick look-ups may hand out the same one). */
async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await findFreePort());
  return [...ports];
}

function prefixed(name: string, onOutputLine: (line: string) => void): (line: string) => void {
  return (line) => onOutputLine(`[${name}] ${line}`);
}
