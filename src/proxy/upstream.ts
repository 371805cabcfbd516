/**
 * An upstream binary cache: narinfo lookups with a deadline, back-off while the cache is down
 * (longer for one only intermittently online), and NAR downloads that fail when they stall.
 */
import {
  type NarInfo,
  MAX_NARINFO_SIZE,
  confineNarUrl,
  parseNarInfo,
  verifiedSigners,
} from '../nix/index.js';
import type { Logger } from '../server/index.js';
import type { UpstreamConfig } from './config.js';
import { FetchError, download, fetchBytes } from '../server/index.js';

export class Upstream {
  private downUntil = 0;
  private delayMs = 0;

  constructor(
    readonly config: UpstreamConfig,
    private readonly logger: Logger,
  ) {}

  get url(): string {
    return this.config.url;
  }

  /** How the cache is named to clients: its URL, but never a path on the proxy's disk. */
  get label(): string {
    return this.url.startsWith('file:') ? 'a file:// cache' : this.url;
  }

  /** Until when it is not asked (backing off after failures), if it is backing off. */
  backingOffUntil(now = Date.now()): number | undefined {
    return now >= this.downUntil ? undefined : this.downUntil;
  }

  /** False while backing off after a failure. */
  available(now = Date.now()): boolean {
    return now >= this.downUntil;
  }

  private failed(reason: string): void {
    const [first, max] = this.config.intermittent ? [5_000, 600_000] : [1_000, 60_000];
    this.delayMs = this.delayMs === 0 ? first : Math.min(max, this.delayMs * 2);
    this.downUntil = Date.now() + this.delayMs;
    const level = this.config.intermittent ? 'debug' : 'warn';
    this.logger[level]('upstream cache unavailable: backing off', {
      upstream: this.url,
      reason,
      ms: this.delayMs,
    });
  }

  /** The cache's credentials, sent to its own URLs only (NAR URLs are confined to it). */
  private get credentials(): { headers?: Record<string, string> } {
    const { authorization } = this.config;
    return authorization === undefined ? {} : { headers: { Authorization: authorization } };
  }

  private succeeded(): void {
    this.delayMs = 0;
    this.downUntil = 0;
  }

  /**
   * The cache's narinfo for `hashPart`, parsed and (when the upstream has keys configured)
   * signature-checked; undefined when the cache does not have it. Throws when the cache is
   * down, slow, or answers something invalid.
   */
  async narinfo(hashPart: string, storeDir: string): Promise<NarInfo | undefined> {
    let bytes: Buffer;
    try {
      bytes = await fetchBytes(
        `${this.url}/${hashPart}.narinfo`,
        this.config.timeoutMs,
        MAX_NARINFO_SIZE,
        this.credentials,
      );
    } catch (e) {
      if (e instanceof FetchError && e.notFound) {
        this.succeeded();
        return undefined;
      }
      this.failed((e as Error).message);
      throw e;
    }
    this.succeeded();
    const info = parseNarInfo(bytes.toString('utf8'), storeDir);
    if (info.storePath.hashPart !== hashPart)
      throw new Error(`narinfo is about ${info.storePath.hashPart}`);
    confineNarUrl(this.url, info.url);
    if (
      this.config.publicKeys.length > 0 &&
      verifiedSigners(info, this.config.publicKeys).length === 0
    ) {
      throw new Error('narinfo has no signature by the keys configured for this cache');
    }
    return info;
  }

  /** The absolute URL of a narinfo's NAR (relative to the cache root, confined to it). */
  narUrl(info: NarInfo): string {
    return confineNarUrl(this.url, info.url);
  }

  /**
   * Fetches the (compressed) file of a NAR of `narSize` bytes whole: at most twice that and
   * 64 KiB (compressed data can be a little larger than what it holds, never this much). Like a
   * stream, it fails when no data comes for the cache's timeout; and it must come at 8 KiB/s of
   * the NAR's size at least, after the timeout (a slow link still gets it, a trickle does not
   * hold a request long).
   */
  async fetchWhole(url: string, narSize: number): Promise<Uint8Array[]> {
    confineNarUrl(this.url, url);
    const maxBytes = 2 * narSize + 65_536;
    const allowedMs = this.config.timeoutMs + Math.ceil((narSize / 8192) * 1000);
    const stop = new AbortController();
    const timer = setTimeout(() => {
      stop.abort();
    }, allowedMs);
    const parts: Uint8Array[] = [];
    let size = 0;
    try {
      for await (const chunk of download(
        url,
        this.config.timeoutMs,
        stop.signal,
        this.credentials,
      )) {
        size += chunk.length;
        if (size > maxBytes) throw new FetchError(`${url}: larger than ${maxBytes} bytes`);
        parts.push(chunk);
      }
    } catch (error) {
      if (stop.signal.aborted) throw new FetchError(`${url}: not received within ${allowedMs} ms`);
      throw error;
    } finally {
      clearTimeout(timer);
    }
    return parts;
  }

  /**
   * Streams a (compressed) NAR; fails when no data arrives for the cache's timeout, so a
   * stalled download cannot hold a client forever.
   */
  async *download(url: string, signal: AbortSignal): AsyncGenerator<Uint8Array> {
    confineNarUrl(this.url, url);
    yield* download(url, this.config.timeoutMs, signal, this.credentials);
  }
}
