import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";

const STREAM = "HARNESS";

/** Runs `use` on a fresh connection and closes it, so no client reconnects to a stopped server. */
async function withConnection<T>(
  server: NatsServerHandle,
  use: (nc: NatsConnection) => Promise<T>,
): Promise<T> {
  const nc = await connect({ servers: server.url });
  try {
    return await use(nc);
  } finally {
    await nc.close();
  }
}

async function storedMessageCount(server: NatsServerHandle): Promise<number> {
  return withConnection(server, async (nc) => {
    const jsm = await jetstreamManager(nc);
    return (await jsm.streams.info(STREAM)).state.messages;
  });
}

describe("the nats-server test harness", () => {
  let server: NatsServerHandle;

  beforeAll(async () => {
    server = await startNatsServer();
  });

  afterAll(async () => {
    await server?.cleanup();
  });

  it("keeps a file stream's messages across stop and restart on the same port", async () => {
    const ack = await withConnection(server, async (nc) => {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: STREAM, subjects: ["harness.>"], storage: StorageType.File });
      return jetstream(nc).publish("harness.persisted", "graded", { msgID: "x" });
    });
    expect(ack).toMatchObject({ stream: STREAM, seq: 1, duplicate: false });

    await server.stop();
    await server.restart();

    expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
    expect(await storedMessageCount(server)).toBe(1);
  });

  it("comes back after kill() with the acknowledged message still stored", async () => {
    await server.kill();
    await server.restart();

    expect(await storedMessageCount(server)).toBe(1);
  });
});

describe("startNatsServer without a usable binary", () => {
  afterAll(() => {
    vi.unstubAllEnvs();
  });

  it("fails naming the NATS_SERVER_BIN it tried", async () => {
    vi.stubEnv("NATS_SERVER_BIN", "/nonexistent/nats-server");
    await expect(startNatsServer()).rejects.toThrow(
      "NATS_SERVER_BIN is /nonexistent/nats-server, which is not an executable file",
    );
  });
});
