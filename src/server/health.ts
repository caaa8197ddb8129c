import type { Server, ServerWritableStream, UntypedServiceImplementation } from "@grpc/grpc-js";
import { HealthImplementation, type ServingStatus } from "grpc-health-check";

/** The health service name of ScoreService; "" names the whole server. */
export const SCORE_SERVICE_HEALTH_NAME = "gradecast.v1.ScoreService";

const HEALTH_SERVICE_NAMES = ["", SCORE_SERVICE_HEALTH_NAME] as const;

/**
 * Derives gradecast's serving status from its parts and publishes it on the
 * standard `grpc.health.v1.Health` service (Check and Watch, from
 * grpc-health-check) for both "" and `gradecast.v1.ScoreService`.
 *
 * SERVING only while the store is open, gradecast can publish now (connected,
 * and since then the stream set up or a publish acknowledged), and the server
 * is not draining. Scores are still accepted while NATS is down (the outbox
 * keeps them), but events are late then, so a load balancer should prefer an
 * instance that publishes now. Draining is final.
 */
export class ServingHealth {
  readonly #implementation = new HealthImplementation(
    Object.fromEntries(HEALTH_SERVICE_NAMES.map((name) => [name, "NOT_SERVING"])),
  );
  readonly #watches = new Set<ServerWritableStream<unknown, unknown>>();
  #isStoreOpen = false;
  #isNatsReady = false;
  #isDraining = false;
  #status: ServingStatus = "NOT_SERVING";

  /** The status last published. */
  get status(): ServingStatus {
    return this.#status;
  }

  /** True while the status is SERVING. */
  get isServing(): boolean {
    return this.#status === "SERVING";
  }

  /**
   * Adds the Health service to `server`. Watch streams are tracked so that
   * draining can end them: an open Watch would otherwise hold a graceful
   * gRPC shutdown until it is forced.
   */
  addToServer(server: Pick<Server, "addService">): void {
    this.#implementation.addToServer({
      addService: (service, implementation: UntypedServiceImplementation) => {
        const watch = implementation.watch;
        const tracked: UntypedServiceImplementation = { ...implementation };
        if (watch) {
          tracked.watch = (call: ServerWritableStream<unknown, unknown>) => {
            (watch as (call: ServerWritableStream<unknown, unknown>) => void)(call);
            if (this.#isDraining) {
              call.end();
              return;
            }
            this.#watches.add(call);
            call.on("cancelled", () => this.#watches.delete(call));
          };
        }
        server.addService(service, tracked);
      },
    });
  }

  /** Records whether the store is open (and, for PostgreSQL, answering). */
  setStoreOpen(isOpen: boolean): void {
    this.#isStoreOpen = isOpen;
    this.#publish();
  }

  /**
   * Records whether gradecast can publish now: true after a stream set-up or an
   * acknowledged publish on the current connection, false once it drops. Cheap
   * enough to call on every acknowledgement.
   */
  setNatsReady(isReady: boolean): void {
    if (isReady === this.#isNatsReady) return;
    this.#isNatsReady = isReady;
    this.#publish();
  }

  /**
   * Marks the server as draining: NOT_SERVING from now on, whatever the
   * parts say. Open Watch streams get NOT_SERVING, then end.
   */
  startDraining(): void {
    this.#isDraining = true;
    this.#publish();
    for (const call of this.#watches) call.end();
    this.#watches.clear();
  }

  #publish(): void {
    const status: ServingStatus =
      this.#isStoreOpen && this.#isNatsReady && !this.#isDraining ? "SERVING" : "NOT_SERVING";
    if (status === this.#status) return;
    this.#status = status;
    for (const name of HEALTH_SERVICE_NAMES) this.#implementation.setStatus(name, status);
  }
}
