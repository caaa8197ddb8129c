interface Listener<T> {
  readonly buffer: T[];
  wake: (() => void) | undefined;
  isClosed: boolean;
}

/**
 * Fans values out to any number of async iterables, like nats.js `status()`: each iterable
 * sees the values published after it was created, and ends when the channel closes. A
 * listener that does not keep up keeps only its newest `maxBuffered` values.
 */
export class StatusChannel<T extends object> {
  readonly #listeners = new Set<Listener<T>>();
  readonly #maxBuffered: number;
  #isClosed = false;

  constructor(maxBuffered = 1_024) {
    this.#maxBuffered = maxBuffered;
  }

  publish(value: T): void {
    for (const listener of this.#listeners) {
      listener.buffer.push(value);
      if (listener.buffer.length > this.#maxBuffered) listener.buffer.shift();
      this.#wake(listener);
    }
  }

  /** Ends every iterable once it has yielded what it buffered; later ones end at once. */
  close(): void {
    this.#isClosed = true;
    for (const listener of this.#listeners) {
      listener.isClosed = true;
      this.#wake(listener);
    }
  }

  /** An iterable of what is published from now on (registered at once, not on first `next`). */
  subscribe(): AsyncIterable<T> {
    const listener: Listener<T> = { buffer: [], wake: undefined, isClosed: this.#isClosed };
    this.#listeners.add(listener);
    const listeners = this.#listeners;
    return {
      async *[Symbol.asyncIterator]() {
        try {
          for (;;) {
            const value = listener.buffer.shift();
            if (value !== undefined) {
              yield value;
              continue;
            }
            if (listener.isClosed) return;
            await new Promise<void>((resolve) => {
              listener.wake = resolve;
            });
          }
        } finally {
          listeners.delete(listener);
        }
      },
    };
  }

  #wake(listener: Listener<T>): void {
    const wake = listener.wake;
    listener.wake = undefined;
    wake?.();
  }
}
