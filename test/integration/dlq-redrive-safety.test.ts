import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { type NatsConnection, headers as natsHeaders } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureStream } from "../../src/events/index.js";
import {
  listDeadLetters,
  RedriveRefusedError,
  redriveDeadLetter,
} from "../../src/subscriber/index.js";
import { runTsxScript } from "../helpers/child-process.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";

// Whoever may dead-letter (every LMS consumer) writes a dead letter's headers. They are data:
// `dlq redrive` must never publish where a header says, and `dlq list` must not print them raw.

const STREAM = "REDRIVE_SAFETY";
const DEAD_LETTER_STREAM = "REDRIVE_SAFETY_DLQ";

let nats: NatsServerHandle;
let connection: NatsConnection;

beforeAll(async () => {
  nats = await startNatsServer();
  connection = await connect({ servers: nats.url });
  await ensureStream(connection, {
    name: STREAM,
    deadLetterName: DEAD_LETTER_STREAM,
    subjectPrefix: "gradecast",
    duplicateWindowMs: 60_000,
    maxAgeMs: 0,
    maxBytes: -1,
    replicas: 1,
  });
});

afterAll(async () => {
  await connection?.close();
  await nats?.cleanup();
});

/** Publishes a forged dead letter on the `python-grader` queue's dead-letter subject. */
async function deadLetter(headerValues: Record<string, string>): Promise<number> {
  const headers = natsHeaders();
  for (const [name, value] of Object.entries(headerValues)) headers.set(name, value);
  const ack = await jetstream(connection).publish(
    "gradecast.dlq.v1.python-grader",
    new Uint8Array([1, 2, 3]),
    { headers },
  );
  return ack.seq;
}

describe("dlq redrive", () => {
  it.each([
    ["a JetStream API subject", `$JS.API.STREAM.DELETE.${STREAM}`],
    ["another queue's subject", "gradecast.scores.v1.java-grader"],
    ["a subject outside the prefix", "other.scores.v1.python-grader"],
  ])(
    "refuses a dead letter whose original subject names %s, and publishes nothing",
    async (_, subject) => {
      const sequence = await deadLetter({ "gradecast-dlq-original-subject": subject });
      const jsm = await jetstreamManager(connection);
      const before = (await jsm.streams.info(STREAM)).state.messages;

      const refusal = await redriveDeadLetter(connection, DEAD_LETTER_STREAM, sequence).catch(
        (error: unknown) => error,
      );

      expect(refusal).toBeInstanceOf(RedriveRefusedError);
      expect((refusal as Error).message).toContain(
        "can only go back to gradecast.scores.v1.python-grader",
      );
      // The stream is still there, unchanged, and the dead letter stays for a person to look at.
      expect((await jsm.streams.info(STREAM)).state.messages).toBe(before);
      const kept = await listDeadLetters(connection, DEAD_LETTER_STREAM);
      expect(kept.map((entry) => entry.sequence)).toContain(sequence);
    },
  );

  it("re-drives a dead letter to its own queue's subject, without the Nats-* headers it carried", async () => {
    const sequence = await deadLetter({
      "gradecast-dlq-original-subject": "gradecast.scores.v1.python-grader",
      "ce-id": "0190a8c4-1f6e-7c3a-9a8b-123456789abc",
      // Any Nats-* header (expectations, rollups) steers JetStream: none is carried over.
      "Nats-Forged": "1",
    });
    const receipt = await redriveDeadLetter(connection, DEAD_LETTER_STREAM, sequence);
    expect(receipt.subject).toBe("gradecast.scores.v1.python-grader");
    const jsm = await jetstreamManager(connection);
    const stored = await jsm.streams.getMessage(STREAM, { seq: receipt.streamSequence });
    expect(stored?.subject).toBe("gradecast.scores.v1.python-grader");
    expect(stored?.header?.get("ce-id")).toBe("0190a8c4-1f6e-7c3a-9a8b-123456789abc");
    expect(stored?.header?.has("Nats-Forged")).toBe(false);
  });
});

describe("dlq list", () => {
  it("prints header values escaped, so a dead letter cannot drive the operator's terminal", async () => {
    await deadLetter({
      "gradecast-dlq-original-subject": "gradecast.scores.v1.python-grader",
      "gradecast-dlq-error": "boom \u001b]0;owned\u0007\u001b[2J",
      "gradecast-dlq-reason": "handler-failed",
    });
    const run = await runTsxScript(
      "src/cli/run.ts",
      ["dlq", "list", "--nats-url", nats.url, "--dead-letter-stream", DEAD_LETTER_STREAM],
      { timeoutMs: 60_000, killSignal: "SIGKILL" },
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).not.toContain("\u001b");
    expect(run.stdout).not.toContain("\u0007");
    expect(run.stdout).toContain("\\u001b]0;owned\\u0007\\u001b[2J");
  });
});
