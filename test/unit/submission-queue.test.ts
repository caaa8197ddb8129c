import { describe, expect, it } from "vitest";
import { SubmissionQueue } from "../../src/subscriber/submission-queue.js";

/** Lets every pending promise callback run, so the queue has started what it can. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * A queue whose work items run until the test finishes them, recording what ran when.
 * Items are strings `<key>:<n>`; the key is what precedes the colon.
 */
function gatedQueue(concurrency: number) {
  const started: string[] = [];
  const finished: string[] = [];
  const workErrors: Array<[unknown, string]> = [];
  const gates = new Map<string, { release: () => void; fail: (error: Error) => void }>();
  let maxRunning = 0;
  const queue = new SubmissionQueue<string>(
    concurrency,
    (item) =>
      new Promise<void>((release, fail) => {
        started.push(item);
        maxRunning = Math.max(maxRunning, queue.runningCount);
        gates.set(item, { release, fail });
      }).finally(() => finished.push(item)),
    (error, item) => workErrors.push([error, item]),
  );
  const gate = (item: string) => {
    const found = gates.get(item);
    if (found === undefined) throw new Error(`${item} has not started (started: ${started})`);
    return found;
  };
  return {
    queue,
    started,
    finished,
    workErrors,
    maxRunning: () => maxRunning,
    push: (...items: string[]) => {
      for (const item of items) queue.push(item.split(":")[0] ?? item, item);
    },
    /** Finishes a running item and lets the queue start what comes next. */
    finish: async (item: string) => {
      gate(item).release();
      await settle();
    },
    fail: async (item: string, error: Error) => {
      gate(item).fail(error);
      await settle();
    },
    /** Finishes whatever runs, oldest first, until nothing is left. */
    drain: async () => {
      while (queue.size > 0) {
        const running = started.filter((item) => !finished.includes(item));
        const [oldest] = running;
        if (oldest === undefined) throw new Error(`${queue.size} items wait but none runs`);
        gate(oldest).release();
        await settle();
      }
    },
  };
}

describe("SubmissionQueue", () => {
  it("runs at most `concurrency` items at once, starting the next as one finishes", async () => {
    const run = gatedQueue(2);
    run.push("a:1", "b:1", "c:1", "d:1", "e:1");
    await settle();
    expect(run.started).toEqual(["a:1", "b:1"]);
    expect(run.queue.runningCount).toBe(2);
    expect(run.queue.size).toBe(5);

    await run.finish("b:1");
    expect(run.started).toEqual(["a:1", "b:1", "c:1"]);
    expect(run.queue.runningCount).toBe(2);

    await run.drain();
    expect(run.finished).toHaveLength(5);
    expect(run.maxRunning()).toBe(2);
    expect(run.queue.size).toBe(0);
  });

  it("runs the items of one key strictly one after another, in the order pushed", async () => {
    const run = gatedQueue(4);
    run.push("a:1", "a:2", "a:3");
    await settle();
    expect(run.started).toEqual(["a:1"]);
    expect(run.queue.runningCount).toBe(1);

    // Pushed while its key runs: still waits for the items before it.
    run.push("a:4");
    for (const item of ["a:1", "a:2", "a:3"]) {
      await run.finish(item);
      expect(run.queue.runningCount).toBe(1);
    }
    await run.finish("a:4");
    expect(run.started).toEqual(["a:1", "a:2", "a:3", "a:4"]);
    expect(run.finished).toEqual(["a:1", "a:2", "a:3", "a:4"]);
    expect(run.maxRunning()).toBe(1);
  });

  it("runs items of different keys in parallel, each key still in order", async () => {
    const run = gatedQueue(3);
    run.push("a:1", "a:2", "b:1", "b:2", "c:1");
    await settle();
    expect(run.started).toEqual(["a:1", "b:1", "c:1"]);
    expect(run.queue.runningCount).toBe(3);

    await run.finish("b:1");
    expect(run.started.at(-1)).toBe("b:2");
    await run.drain();
    const order = (key: string) => run.started.filter((item) => item.startsWith(`${key}:`));
    expect(order("a")).toEqual(["a:1", "a:2"]);
    expect(order("b")).toEqual(["b:1", "b:2"]);
    expect(run.maxRunning()).toBe(3);
  });

  it("gives a busy key's next item a turn after the keys already waiting", async () => {
    const run = gatedQueue(1);
    run.push("a:1", "a:2", "a:3", "b:1", "c:1");
    await settle();
    await run.drain();
    expect(run.started).toEqual(["a:1", "b:1", "c:1", "a:2", "a:3"]);
  });

  it("hands a failed item to onWorkError and goes on with the key's next item", async () => {
    const run = gatedQueue(1);
    run.push("a:1", "a:2");
    await settle();
    const failure = new Error("work threw");
    await run.fail("a:1", failure);
    expect(run.workErrors).toEqual([[failure, "a:1"]]);
    expect(run.started).toEqual(["a:1", "a:2"]);
    await run.finish("a:2");
    expect(run.queue.size).toBe(0);
  });

  it("takeWaiting returns the items not started and onIdle waits for the running ones", async () => {
    const run = gatedQueue(1);
    run.push("a:1", "a:2", "b:1");
    await settle();
    expect(run.queue.takeWaiting().sort()).toEqual(["a:2", "b:1"]);
    expect(run.queue.size).toBe(1);

    let isIdle = false;
    const idle = run.queue.onIdle().then(() => {
      isIdle = true;
    });
    await settle();
    expect(isIdle).toBe(false);
    await run.finish("a:1");
    await idle;
    expect(run.started).toEqual(["a:1"]);
    await expect(run.queue.onIdle()).resolves.toBeUndefined();
  });
});
