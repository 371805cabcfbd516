/**
 * Demand reporting: once a period has ended, the proxy sends the monitor its request counts
 * for it (paths asked for at least `min-requests` times, at most `max-paths` of them, most
 * requested first) as a signed `accord/demand/v1` report. The counts stay in the proxy's state
 * until the monitor accepts the report or refuses it for good (400, 403, 409, 413); any other
 * failure is retried on the next round. See docs/dashboard.md, "Demand reporting and privacy".
 */
import {
  type DemandPath,
  MAX_DEMAND_BYTES,
  demandSigner,
  formatDemandLine,
  signDemandReport,
} from '../demand/index.js';
import type { NixSecretKey } from '../nix/index.js';
import { FetchError, type Logger, postBytes } from '../server/index.js';
import type { NoteSigner } from '../tlog/index.js';
import type { DemandConfig } from './config.js';
import type { ProxyState } from './state.js';

/** Deadline of one report's POST. */
export const DEMAND_TIMEOUT_MS = 10_000;
/** Time between rounds of sending the reports due. */
const ROUND_MS = 60_000;
/** Room left in a report for its three header lines and its signature. */
const HEADROOM_BYTES = 4096;
/** Unsent periods older than this are dropped (the monitor was gone for a month). */
const MAX_AGE_SECONDS = 30 * 86_400;
/** The monitor's answers that refuse a report for good: it is not sent again. */
const FINAL = new Set([400, 403, 409, 413]);

/** What one round did with each ended period. */
export interface DemandRound {
  readonly sent: number;
  readonly refused: number;
  /** Periods still to send (the monitor could not be reached). */
  readonly pending: number;
}

export class DemandReporter {
  private readonly signer: NoteSigner;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<DemandRound> | undefined;

  constructor(
    private readonly config: DemandConfig,
    signingKey: NixSecretKey,
    private readonly state: ProxyState,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.signer = demandSigner(signingKey);
  }

  /** Sends a round now and then one every minute, until {@link close}. */
  start(): void {
    const loop = () => {
      this.sendDue()
        .catch((error: unknown) => {
          this.logger.error('demand report round failed', { error });
        })
        .finally(() => {
          if (this.timer !== undefined) this.timer = setTimeout(loop, ROUND_MS).unref();
        });
    };
    this.timer = setTimeout(loop, 0).unref();
  }

  /** Sends the report of every ended period, oldest first; one round at a time. */
  sendDue(): Promise<DemandRound> {
    this.running ??= this.round().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async round(): Promise<DemandRound> {
    const nowSeconds = Math.floor(this.now() / 1000);
    const periods = this.state.endedDemandPeriods(nowSeconds);
    let sent = 0;
    let refused = 0;
    for (const [i, p] of periods.entries()) {
      if (p.period + p.seconds < nowSeconds - MAX_AGE_SECONDS) {
        this.logger.warn('demand report too old to send: dropped', { period: p.period });
        this.state.forgetDemand(p.period);
        continue;
      }
      const outcome = await this.send(p.period, p.seconds);
      if (outcome === 'retry') return { sent, refused, pending: periods.length - i };
      if (outcome === 'sent') sent++;
      else refused++;
      this.state.forgetDemand(p.period);
    }
    return { sent, refused, pending: 0 };
  }

  /** The paths of a period to report: within max-paths and the size cap. */
  private paths(period: number): { paths: DemandPath[]; omitted: number } {
    const { paths, omitted } = this.state.demandPaths(
      period,
      this.config.minRequests,
      this.config.maxPaths,
    );
    let bytes = 0;
    let fits = 0;
    for (const p of paths) {
      bytes += Buffer.byteLength(formatDemandLine(p));
      if (bytes > MAX_DEMAND_BYTES - HEADROOM_BYTES) break;
      fits++;
    }
    return { paths: paths.slice(0, fits), omitted: omitted + paths.length - fits };
  }

  private async send(period: number, seconds: number): Promise<'sent' | 'refused' | 'retry'> {
    const { paths, omitted } = this.paths(period);
    if (paths.length === 0) return 'sent';
    if (omitted > 0)
      this.logger.warn('demand report full: least requested paths left out', { period, omitted });
    const note = signDemandReport(
      {
        reporter: this.signer.name,
        periodStart: period,
        periodSeconds: seconds,
        paths: [...paths].sort((a, b) => (a.hashPart < b.hashPart ? -1 : 1)),
      },
      this.signer,
    );
    const url = `${this.config.monitor}/demand`;
    try {
      await postBytes(url, note, 'text/plain; charset=utf-8', DEMAND_TIMEOUT_MS, 1 << 16);
      this.logger.info('demand reported', { monitor: url, period, paths: paths.length });
      return 'sent';
    } catch (error) {
      if (error instanceof FetchError && error.status !== undefined && FINAL.has(error.status)) {
        this.logger.error('demand report refused by the monitor: dropped', {
          monitor: url,
          period,
          reason: error.message,
        });
        return 'refused';
      }
      this.logger.warn('demand report not delivered: will retry', {
        monitor: url,
        period,
        reason: (error as Error).message,
      });
      return 'retry';
    }
  }

  /** Stops the rounds and waits for the one under way. */
  async close(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
