/**
 * Runs work items with at most `concurrency` at once, and the items of one key (one
 * submission: an id within a queue) strictly one after another, in the order they were pushed. Keys take turns:
 * a key whose item finishes goes to the back of the line, so one busy submission cannot
 * starve the others.
 */
export class SubmissionQueue<T> {
  readonly #concurrency: number;
  readonly #work: (item: T) => Promise<void>;
  readonly #onWorkError: (error: unknown, item: T) => void;
  /** Items not started yet, per key; a key is present while it has work queued or running. */
  readonly #waiting = new Map<string, T[]>();
  /** Keys with a waiting item and nothing running, in turn order. */
  #ready: string[] = [];
  readonly #running = new Set<string>();
  #idleWaiters: Array<() => void> = [];

  /**
   * `work` owns an item's outcome (ack, nak or dead letter) and should not throw; if it does,
   * `onWorkError` gets the error and the queue moves on to the key's next item.
   */
  constructor(
    concurrency: number,
    work: (item: T) => Promise<void>,
    onWorkError: (error: unknown, item: T) => void,
  ) {
    this.#concurrency = concurrency;
    this.#work = work;
    this.#onWorkError = onWorkError;
  }

  /** Items pushed and not finished (running or waiting). */
  get size(): number {
    let waiting = 0;
    for (const items of this.#waiting.values()) waiting += items.length;
    return waiting + this.#running.size;
  }

  /** Items running now. */
  get runningCount(): number {
    return this.#running.size;
  }

  push(key: string, item: T): void {
    const items = this.#waiting.get(key);
    if (items !== undefined) {
      // Already in line (ready, or running with more to come): it keeps its place.
      items.push(item);
      return;
    }
    this.#waiting.set(key, [item]);
    // A running key gets back in line when its item finishes.
    if (!this.#running.has(key)) this.#ready.push(key);
    this.#pump();
  }

  /** Resolves once nothing runs or waits. */
  onIdle(): Promise<void> {
    if (this.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Removes and returns every item not started yet; running ones finish on their own. */
  takeWaiting(): T[] {
    const taken = [...this.#waiting.values()].flat();
    this.#waiting.clear();
    this.#ready = [];
    this.#notifyIfIdle();
    return taken;
  }

  #pump(): void {
    while (this.#running.size < this.#concurrency) {
      const key = this.#ready.shift();
      if (key === undefined) return;
      const items = this.#waiting.get(key);
      const item = items?.shift();
      if (items === undefined || item === undefined) continue;
      if (items.length === 0) this.#waiting.delete(key);
      this.#running.add(key);
      void this.#run(key, item);
    }
  }

  async #run(key: string, item: T): Promise<void> {
    try {
      await this.#work(item);
    } catch (error) {
      this.#onWorkError(error, item);
    } finally {
      this.#running.delete(key);
      if (this.#waiting.has(key)) this.#ready.push(key);
      this.#pump();
      this.#notifyIfIdle();
    }
  }

  #notifyIfIdle(): void {
    if (this.size !== 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
