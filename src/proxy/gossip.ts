/**
 * Checkpoint gossip: every log checkpoint the proxy is shown (signed by the log, witnessed or
 * not) is handed to the configured monitors, which compare it with the tree they verified. A
 * log showing this proxy a private fork is thereby caught. A monitor's word is not enough: its
 * answer must carry fork evidence that verifies with the log's keys — its key from the policy,
 * or for an identity's log the keys its statements name and never revoked — and only then does
 * the proxy distrust the log, as if it had found the fork itself.
 */
import { type Logger, postBytes } from '../server/index.js';
import { type NoteVerifier, verifyForkEvidence } from '../tlog/index.js';
import type { ProxyState } from './state.js';

export class CheckpointGossip {
  /** The last checkpoint note handed over per log, not to send the same one twice. */
  private readonly sent = new Map<string, string>();
  private readonly inFlight = new Set<Promise<void>>();

  /** `keysOf`: the keys fork evidence against a log must be signed by (none: not a policy log). */
  constructor(
    private readonly monitors: readonly string[],
    private readonly keysOf: (origin: string) => readonly NoteVerifier[],
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
    let answer: { status?: unknown; evidence?: unknown } | null;
    try {
      const body = await postBytes(
        `${monitor}/checkpoints`,
        note,
        'text/plain; charset=utf-8',
        this.timeoutMs,
        1 << 20,
      );
      answer = JSON.parse(body.toString('utf8')) as typeof answer;
    } catch (error) {
      this.logger.warn('checkpoint gossip failed', {
        monitor,
        log: origin,
        reason: (error as Error).message,
      });
      return;
    }
    if (answer?.status !== 'fork') return;
    const keys = this.keysOf(origin);
    if (keys.length === 0) return;
    let reason: string;
    try {
      if (typeof answer.evidence !== 'string') throw new Error('the answer carries no evidence');
      reason = verifyForkEvidence(answer.evidence, keys).reason;
    } catch (error) {
      this.logger.warn('a monitor reports a fork without evidence that verifies: ignored', {
        monitor,
        log: origin,
        reason: (error as Error).message,
      });
      return;
    }
    if (this.state.distrusted(origin) === undefined) {
      const why = `fork: shown by monitor ${monitor}: ${reason}`;
      this.state.distrust(origin, why, answer.evidence);
      this.logger.error('log misbehaves: distrusted', { log: origin, reason: why });
      this.onFork?.(origin);
    }
  }

  /** Waits for the checkpoints being sent. */
  async drain(): Promise<void> {
    await Promise.all([...this.inFlight]);
  }
}
