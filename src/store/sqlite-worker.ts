// Worker thread that owns the SQLite connection of a ThreadedSqliteStore. Its
// commits (and their fsyncs) block this thread, not the one serving gRPC.
import { parentPort, workerData } from "node:worker_threads";
import { SqliteStore, type SqliteStoreOptions } from "./sqlite-store.js";
import type {
  NewScore,
  OutboxPruning,
  PublishedEvent,
  PublishFailure,
  SubmissionHistoryOptions,
  SubmissionKey,
} from "./store.js";
import {
  type StoreReply,
  type StoreRequest,
  serializeError,
  toWireOutcome,
} from "./store-messages.js";

const port = parentPort;
if (!port) throw new Error("sqlite-worker must run as a worker thread");

const store = new SqliteStore(workerData as SqliteStoreOptions);

async function handle(request: StoreRequest): Promise<unknown> {
  const [first, second, third] = request.args;
  switch (request.method) {
    case "recordScores": {
      const outcomes = await store.recordScores(first as NewScore[], second as number);
      return outcomes.map(toWireOutcome);
    }
    case "latestScore":
      return store.latestScore(first as SubmissionKey);
    case "latestScoresAcrossQueues":
      return store.latestScoresAcrossQueues(first as bigint);
    case "claimPending":
      return store.claimPending(first as number, second as number, third as number);
    case "markPublished":
      return store.markPublished(first as PublishedEvent[]);
    case "releaseClaims":
      return store.releaseClaims(first as PublishFailure[]);
    case "outboxBacklog":
      return store.outboxBacklog();
    case "listOutbox":
      return store.listOutbox(first as { limit: number; parkedOnly: boolean });
    case "unparkEvents":
      return store.unparkEvents(first as string[] | undefined);
    case "pruneOutbox":
      return store.pruneOutbox(first as OutboxPruning);
    case "submissionHistory":
      return store.submissionHistory(first as bigint, second as SubmissionHistoryOptions);
    case "close":
      return store.close();
  }
}

try {
  await store.start();
  port.postMessage({ id: 0, isOk: true, value: undefined } satisfies StoreReply);
} catch (error) {
  port.postMessage({ id: 0, isOk: false, error: serializeError(error) } satisfies StoreReply);
}

port.on("message", (request: StoreRequest) => {
  handle(request).then(
    (value) => port.postMessage({ id: request.id, isOk: true, value } satisfies StoreReply),
    (error: unknown) =>
      port.postMessage({
        id: request.id,
        isOk: false,
        error: serializeError(error),
      } satisfies StoreReply),
  );
});
