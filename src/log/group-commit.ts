/**
 * Group commit: requests that arrive while a commit is running (or in the same event-loop turn)
 * are written together by the next commit, so concurrent submissions share one transaction and
 * one fsync instead of queueing for one each.
 */
export class GroupCommit<T, R> {
  private queue: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  private running = false;

  /** `commit` writes a group of items in one transaction and returns one result per item. */
  constructor(private readonly commit: (items: readonly T[]) => Promise<R[]> | R[]) {}

  /** Queues `item`; resolves with its result once its group is committed. */
  submit(item: T): Promise<R> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.running) {
        this.running = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const group = this.queue;
      this.queue = [];
      try {
        const results = await this.commit(group.map((g) => g.item));
        group.forEach((g, i) => {
          g.resolve(results[i] as R);
        });
      } catch (error) {
        for (const g of group) g.reject(error);
      }
    }
    this.running = false;
  }
}
