import { HealthClient, type HealthStatus } from "../helpers/health-client.js";

const PROBE_TIMEOUT_MS = 2_000;

/**
 * `grpc.health.v1.Health/Check` of the whole server, on a fresh channel each time (a reused one
 * would sit in grpc-js's reconnect backoff after a restart); the error's text if it failed.
 */
export async function readinessOf(address: string): Promise<HealthStatus | string> {
  const client = new HealthClient(address);
  try {
    const answer = await Promise.race([
      client.check(""),
      new Promise<string>((resolve) => {
        setTimeout(resolve, PROBE_TIMEOUT_MS, `no answer within ${PROBE_TIMEOUT_MS} ms`).unref();
      }),
    ]);
    return answer ?? "UNKNOWN";
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    client.close();
  }
}

/**
 * `gradecast_outbox_pending` from `/metrics` (committed events not yet acknowledged by
 * JetStream), or undefined when the series or the server is not there.
 */
export async function outboxPendingOf(metricsPort: number): Promise<number | undefined> {
  let text: string;
  try {
    const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, {
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    });
    if (!response.ok) return undefined;
    text = await response.text();
  } catch (error) {
    if (error instanceof Error) return undefined;
    throw error;
  }
  const line = text.split("\n").find((sample) => sample.startsWith("gradecast_outbox_pending "));
  return line === undefined ? undefined : Number(line.slice("gradecast_outbox_pending ".length));
}
