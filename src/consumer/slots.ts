/**
 * The concurrency limit: a counting semaphore whose waits end when the service closes.
 */

/** `limit` handler slots shared by the read loop and the reclaimer. */
export class HandlerSlots {
  private used = 0;
  private waiters: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  /** Slots free right now. */
  get free(): number {
    return this.limit - this.used;
  }

  /** Slots taken right now. */
  get inUse(): number {
    return this.used;
  }

  /** Waits for a free slot and takes it; resolves `false` (taking nothing) when `signal` fires first. */
  async acquire(signal: AbortSignal): Promise<boolean> {
    if (!(await this.waitForFree(signal))) return false;
    this.used++;
    return true;
  }

  /** Waits until at least one slot is free, without taking it; `false` when `signal` fired first. */
  async waitForFree(signal: AbortSignal): Promise<boolean> {
    while (this.used >= this.limit) {
      if (signal.aborted) return false;
      await new Promise<void>((resolve) => {
        const wake = () => {
          signal.removeEventListener("abort", wake);
          this.waiters = this.waiters.filter((waiter) => waiter !== wake);
          resolve();
        };
        this.waiters.push(wake);
        signal.addEventListener("abort", wake);
      });
    }
    return !signal.aborted;
  }

  /** Returns a slot and wakes the waiters (they re-check, so no slot is handed out twice). */
  release(): void {
    this.used--;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
