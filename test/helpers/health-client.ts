import { Client, type ClientReadableStream, credentials } from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";

/** A status as grpc.health.v1 names it (proto-loader enums as strings). */
export type HealthStatus = "UNKNOWN" | "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";

interface HealthResponse {
  status?: HealthStatus;
}

/** A plain grpc.health.v1.Health client over grpc-health-check's own service definition. */
export class HealthClient {
  readonly #client: Client;

  constructor(address: string) {
    this.#client = new Client(address, credentials.createInsecure());
  }

  /** Health.Check for `service` ("" is the whole server). */
  check(service: string): Promise<HealthStatus | undefined> {
    const method = healthMethod("Check");
    return new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        { service },
        (error, response) =>
          error ? reject(error) : resolve((response as HealthResponse | undefined)?.status),
      );
    });
  }

  /** Health.Watch for `service`: every status the server sends, and the stream's end. */
  watch(service: string): HealthWatch {
    const method = healthMethod("Watch");
    const stream = this.#client.makeServerStreamRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      { service },
    );
    return new HealthWatch(stream);
  }

  close(): void {
    this.#client.close();
  }
}

/** The statuses one Watch stream has received so far. */
export class HealthWatch {
  readonly statuses: (HealthStatus | undefined)[] = [];
  readonly ended: Promise<void>;
  readonly #stream: ClientReadableStream<unknown>;
  #waiters: (() => void)[] = [];

  constructor(stream: ClientReadableStream<unknown>) {
    this.#stream = stream;
    stream.on("data", (response: HealthResponse) => {
      this.statuses.push(response.status);
      for (const wake of this.#waiters) wake();
      this.#waiters = [];
    });
    this.ended = new Promise((resolve) => {
      stream.on("status", () => resolve());
      // A cancelled or failed stream also ends; its error is not what these tests look at.
      stream.on("error", () => resolve());
    });
  }

  /** Resolves once `status` has been received (now or earlier); rejects after `timeoutMs`. */
  async waitFor(status: HealthStatus, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.statuses.includes(status)) {
      const leftMs = deadline - Date.now();
      if (leftMs <= 0) {
        throw new Error(`no ${status} within ${timeoutMs} ms; got ${this.statuses.join(", ")}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, leftMs);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  cancel(): void {
    this.#stream.cancel();
  }
}

function healthMethod(name: "Check" | "Watch") {
  const method = healthService[name];
  if (!method) throw new Error(`grpc-health-check has no ${name} method`);
  return method;
}
