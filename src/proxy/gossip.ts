/**
 * Checkpoint gossip: every log checkpoint the proxy is shown (signed by the log, witnessed or
 * not) is handed to the configured monitors, which compare it with the tree they verified. A
 * log showing this proxy a private fork is thereby caught; when a monitor answers that the
 * checkpoint is a fork, the proxy distrusts the log as if it had found the fork itself.
 */
import { type Logger, postBytes } from '../server/index.js';
import type { ProxyState } from './state.js';

export class CheckpointGossip {
  /** The last checkpoint note handed over per log, not to send the same one twice. */
  private readonly sent = new Map<string, string>();
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly monitors: readonly string[],
    private readonly state: ProxyState,
    private readonly logger: Logger,
    private readonly timeoutMs: number,
    private readonly onFork?: (origin: string) => void,
  ) {}

  /** Hands `note`, a checkpoint of `origin` whose log signature verified, to every monitor. */
  offer(origin: string, note: string): void {
    if (this.monitors.length === 0 || this.sent.get(origin) === note) return;
    this.sent.set(origin, note);
    for (const monitor of this.monitors) {
      const sending = this.send(monitor, origin, note).finally(() => {
        this.inFlight.delete(sending);
      });
      this.inFlight.add(sending);
    }
  }

  private async send(monitor: string, origin: string, note: string): Promise<void> {
    let answer: { status?: unknown };
    try {
      const body = await postBytes(
        `${monitor}/checkpoints`,
        note,
        'text/plain; charset=utf-8',
        this.timeoutMs,
        1 << 20,
      );
      answer = JSON.parse(body.toString('utf8')) as { status?: unknown };
    } catch (error) {
      this.logger.warn('checkpoint gossip failed', {
        monitor,
        log: origin,
        reason: (error as Error).message,
      });
      return;
    }
    if (answer.status !== 'fork') return;
    const reason = `fork: monitor ${monitor} found this checkpoint outside the log's tree`;
    if (this.state.distrusted(origin) === undefined) {
      this.state.distrust(origin, reason, note);
      this.logger.error('log misbehaves: distrusted', { log: origin, reason });
      this.onFork?.(origin);
    }
  }

  /** Waits for the checkpoints being sent. */
  async drain(): Promise<void> {
    await Promise.all([...this.inFlight]);
  }
}
