/**
 * An upstream binary cache: narinfo lookups with a deadline, back-off while the cache is down
 * (longer for one only intermittently online), and NAR downloads that fail when they stall.
 */
import type { BuildClaim } from '../claim/index.js';
import { MAX_GUIX_NARINFO_SIZE, parseGuixNarInfo, verifyGuixNarInfo } from '../guix/index.js';
import {
  type NixHash,
  MAX_NARINFO_SIZE,
  SUPPORTED_COMPRESSIONS,
  confineNarUrl,
  parseNarInfo,
  verifiedSigners,
} from '../nix/index.js';
import { type CacheVote, type Policy, guixNarInfoVotes, nixNarInfoVotes } from '../policy/index.js';
import type { Logger } from '../server/index.js';
import type { UpstreamConfig } from './config.js';
import { FetchError, download, fetchBytes } from '../server/index.js';

/**
 * An upstream's narinfo for a path, Nix's or Guix's, in the terms the resolver uses: what it
 * states, where its NAR file is, and the votes of the policy's caches it carries.
 */
export interface UpstreamNarInfo {
  readonly narHash: NixHash;
  readonly narSize: number;
  /** Sorted base names. */
  readonly references: readonly string[];
  /**
   * The NAR file's absolute URL, confined to the cache, and its compression; none when the
   * narinfo offers the NAR only in compressions the proxy cannot decode (its votes still count).
   */
  readonly nar?: { readonly url: string; readonly compression: string };
  /** Valid signatures by keys of the policy's caches, each the vote of the cache owning it. */
  readonly votes: readonly CacheVote[];
}

/** How an upstream reads narinfos: Nix's or Guix's format, and the policy whose votes count. */
export interface UpstreamOptions {
  readonly storeDir: string;
  readonly guix: boolean;
  readonly policy: Policy;
  /** The clock (ms since the epoch) stamped on votes. */
  readonly now?: () => number;
}

export class Upstream {
  private downUntil = 0;
  private delayMs = 0;

  constructor(
    readonly config: UpstreamConfig,
    private readonly logger: Logger,
    private readonly options: UpstreamOptions,
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
   * The cache's narinfo for `hashPart`, parsed strictly (a Nix narinfo, or a Guix one for a
   * Guix proxy), its NAR URL confined to the cache and (when the upstream has keys configured)
   * signature-checked; undefined when the cache does not have it. Throws when the cache is
   * down, slow, or answers something invalid: a malformed narinfo is never used, nor relayed.
   */
  async narinfo(hashPart: string): Promise<UpstreamNarInfo | undefined> {
    const { guix, storeDir } = this.options;
    let bytes: Buffer;
    try {
      bytes = await fetchBytes(
        `${this.url}/${hashPart}.narinfo`,
        this.config.timeoutMs,
        guix ? MAX_GUIX_NARINFO_SIZE : MAX_NARINFO_SIZE,
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
    const info = guix ? this.readGuix(bytes, storeDir) : this.readNix(bytes, storeDir);
    const claim: BuildClaim = info.claim;
    if (claim.storePath.hashPart !== hashPart)
      throw new Error(`narinfo is about ${claim.storePath.hashPart}`);
    return {
      narHash: claim.narHash,
      narSize: claim.narSize,
      references: [...claim.references].sort(),
      ...(info.nar === undefined ? {} : { nar: info.nar }),
      votes: info.votes,
    };
  }

  private readNix(bytes: Buffer, storeDir: string) {
    const info = parseNarInfo(bytes.toString('utf8'), storeDir);
    const narUrl = confineNarUrl(this.url, info.url);
    if (
      this.config.publicKeys.length > 0 &&
      verifiedSigners(info, this.config.publicKeys).length === 0
    ) {
      throw new Error('narinfo has no signature by the keys configured for this cache');
    }
    const votes = nixNarInfoVotes(this.options.policy, info, this.now());
    return { claim: info, nar: { url: narUrl, compression: info.compression }, votes };
  }

  /**
   * A Guix narinfo: its NAR from the first URL block in a compression the proxy decodes (a
   * narinfo listing only others, such as lzip, gives votes but no NAR).
   */
  private readGuix(bytes: Buffer, storeDir: string) {
    const info = parseGuixNarInfo(bytes, storeDir);
    if (this.config.guixKeys.length > 0) verifyGuixNarInfo(info, this.config.guixKeys, storeDir);
    const decodable: readonly string[] = SUPPORTED_COMPRESSIONS;
    const block = info.urls.find((u) => decodable.includes(u.compression));
    const votes = guixNarInfoVotes(this.options.policy, info, this.now());
    if (block === undefined) return { claim: info, votes };
    const nar = { url: confineNarUrl(this.url, block.url), compression: block.compression };
    return { claim: info, nar, votes };
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
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
