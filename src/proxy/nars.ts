/**
 * Serving NARs: only the NAR the builders agreed on, from an upstream that has not been caught
 * serving a wrong one for the path. Small NARs are fetched whole into memory and checked before
 * a byte is sent (ahead of Nix's request, as a narinfo goes out); larger ones up to
 * `verify-before-send-mib` are downloaded to the disk cache and checked whole before a byte is
 * sent; the largest stream, held back until checked. A wrong NAR found before the response
 * began is replaced by the next cache's copy within the same request. Verified NARs are kept in
 * memory (small ones) and on disk (all but the largest), for every client of the proxy.
 */
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Logger, Registry } from '../server/index.js';
import type { Answer, Answers } from './answers.js';
import type { Compressors } from './compressors.js';
import type { ProxyConfig } from './config.js';
import { ProxyError } from './errors.js';
import { NarCache } from './nar-cache.js';
import { type NarBody, plainBody, zstdBody } from './nar-body.js';
import { NarDisk } from './nar-disk.js';
import {
  type DownloadOutcome,
  WHOLE_NAR_BYTES,
  downloadNar,
  type WholeNarOutcome,
  fetchWholeNar,
  streamNar,
} from './nar-stream.js';
import { LOCAL_NAR, type Resolver } from './resolver.js';
import type { ProxyState, ServedNar } from './state.js';
import type { Upstream } from './upstream.js';

/** NARs fetched ahead at the same time, and most waiting their turn. */
const AHEAD_RUNNING = 8;
const AHEAD_QUEUED = 1000;

/** Everything an answer says of its NAR: bytes checked against one never answer another. */
const sourceKey = (s: ServedNar) =>
  `${s.narHash} ${s.narSize} ${s.upstream} ${s.narUrl} ${s.compression}`;
const sameSource = (a: ServedNar | undefined, b: ServedNar) =>
  a !== undefined && sourceKey(a) === sourceKey(b);

/** A download failure as told to a client: the upstream by its label, never a local path. */
function publicReason(reason: string, served: ServedNar, upstream: Upstream): string {
  return reason.split(served.narUrl).join(upstream.label);
}

/** The disk cache a config names; a directory that cannot be used names the config key. */
function openDisk(config: ProxyConfig, logger: Logger): NarDisk {
  try {
    return new NarDisk(config.narDiskDir, config.narDiskBytes, logger);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? (cause as Error).message;
    throw new Error(`config: nar-disk-cache ${config.narDiskDir}: ${code}`, { cause });
  }
}

export class Nars {
  private readonly cache: NarCache;
  // Whole fetches of small NARs under way, by path and NAR source: a request and a fetch ahead
  // of the same NAR share one download, whose outcome is dealt with once, here.
  private readonly wholeFetches = new Map<string, Promise<WholeNarOutcome>>();
  // Downloads to the disk cache under way, likewise shared.
  private readonly diskFills = new Map<string, Promise<DownloadOutcome & { file?: string }>>();
  private readonly disk: NarDisk | undefined;
  private readonly aheadQueue: { hashPart: string; served: ServedNar }[] = [];
  private aheadRunning = 0;
  private closing = false;
  private readonly outcomes;
  private readonly bytes;
  private readonly zstd;

  constructor(
    private readonly config: ProxyConfig,
    private readonly resolver: Resolver,
    private readonly answers: Answers,
    private readonly state: ProxyState,
    private readonly logger: Logger,
    metrics: Registry,
    private readonly compressors?: Compressors,
  ) {
    this.cache = new NarCache(config.narCacheBytes);
    this.disk = config.narDiskBytes > 0 ? openDisk(config, logger) : undefined;
    this.outcomes = metrics.counter(
      'accord_proxy_nar_total',
      'NARs by outcome: responses (ok, cached, failed, mismatch) and fetches ahead (prefetched)',
    );
    this.bytes = metrics.counter('accord_proxy_nar_bytes_total', 'Verified NAR bytes served');
    this.zstd = metrics.counter(
      'accord_proxy_nar_zstd_total',
      'NARs sent as zstd, by how: compressed, or raw (every compressor busy)',
    );
    if (compressors !== undefined)
      metrics.gauge(
        'accord_proxy_zstd_compressors',
        'zstd compressors running',
        () => compressors.active,
      );
    metrics.gauge(
      'accord_proxy_nar_cache_bytes',
      'Bytes of verified NARs kept in memory',
      () => this.cache.bytes,
    );
    metrics.gauge(
      'accord_proxy_nar_disk_bytes',
      'Bytes of verified NARs kept on disk',
      () => this.disk?.bytes ?? 0,
    );
  }

  /** Whether the disk cache holds the verified NAR (a trusted path needs no upstream then). */
  hasOnDisk(narHash: string, narSize: number): boolean {
    return this.viaDisk(narSize) && this.disk?.has(narHash, narSize) === true;
  }

  /** Whether a NAR of `size` bytes goes through the disk cache (verified whole first). */
  private viaDisk(size: number): boolean {
    return (
      this.disk !== undefined &&
      size <= this.config.verifyBeforeSendBytes &&
      this.disk.accepts(size)
    );
  }

  /**
   * Where the NAR's bytes go: the response itself, or, for `.nar.zst`, a zstd compressor (or a
   * frame of raw blocks when all are busy) in front of it.
   */
  private async body(
    req: IncomingMessage,
    res: ServerResponse,
    narSize: number,
    zstd: boolean,
  ): Promise<NarBody> {
    if (!zstd) return plainBody(res, narSize);
    if (req.method === 'HEAD') return zstdBody(res, narSize, undefined);
    const compressor = await this.compressors?.open();
    this.zstd.inc({ how: compressor === undefined ? 'raw' : 'compressed' });
    return zstdBody(res, narSize, compressor);
  }

  /**
   * Answers `GET/HEAD /nar/<hashPart>-<narHash>.nar`, and `.nar.zst` with `zstd` (the same
   * verified bytes, compressed); throws a {@link ProxyError} (a 404).
   */
  async serve(
    req: IncomingMessage,
    res: ServerResponse,
    hashPart: string,
    narHash: string,
    zstd = false,
  ) {
    if (zstd && this.compressors === undefined)
      throw new ProxyError('no-nar', 'NARs are not served compressed here (serve-zstd)');
    const wanted = `sha256:${narHash}`;
    let served = this.state.served(hashPart);
    if (served?.narHash !== wanted) {
      // Not resolved by this proxy yet (or since a restart): decide now.
      served = (await this.answers.resolveOnce(hashPart)).resolution.served;
    }
    if (served?.narHash !== wanted) throw new ProxyError('no-nar', 'no trusted NAR with this hash');
    const kept = this.cache.get(wanted);
    if (kept !== undefined) {
      await this.send(req, res, kept, 'cached', zstd);
      return;
    }
    const onDisk = this.viaDisk(served.narSize)
      ? this.disk?.lookup(wanted, served.narSize)
      : undefined;
    if (onDisk !== undefined && (await this.sendFile(req, res, onDisk, served, 'cached', zstd)))
      return;
    if (served.upstream === LOCAL_NAR) {
      // Answered from the disk cache, which no longer has it: decided afresh next time.
      this.state.forgetServed(hashPart);
      this.answers.forget(hashPart);
      throw new ProxyError('no-nar', 'the NAR left the disk cache');
    }
    // An upstream caught with a wrong NAR before the response began is passed over for the
    // next one that has the agreed NAR, within this same request.
    for (let tries = 0; tries < this.resolver.upstreams.length; tries++) {
      const upstream = this.upstreamOf(served);
      const done =
        served.narSize <= WHOLE_NAR_BYTES
          ? await this.serveWhole(req, res, hashPart, served, upstream, zstd)
          : this.viaDisk(served.narSize)
            ? await this.serveDisk(req, res, hashPart, served, upstream, zstd)
            : await this.serveStream(req, res, hashPart, served, upstream, zstd);
      if (done) return;
      served = (await this.answers.resolveOnce(hashPart)).resolution.served;
      if (served?.narHash !== wanted || this.state.isBadUpstream(served.upstream, hashPart)) break;
    }
    throw new ProxyError('no-nar', 'no upstream cache has the agreed NAR');
  }

  /** A small NAR, checked whole before a byte is sent. False: it was wrong, try the next. */
  private async serveWhole(
    req: IncomingMessage,
    res: ServerResponse,
    hashPart: string,
    served: ServedNar,
    upstream: Upstream,
    zstd: boolean,
  ): Promise<boolean> {
    // A fetch ahead under way is joined; if it failed, this request tries once itself.
    const joined = this.wholeFetches.has(`${hashPart} ${sourceKey(served)}`);
    let outcome = await this.fetchWhole(hashPart, served, upstream, false);
    if (outcome.kind === 'failed' && joined)
      outcome = await this.fetchWhole(hashPart, served, upstream, false);
    if (outcome.kind === 'ok') {
      await this.send(req, res, outcome.nar, 'ok', zstd);
      return true;
    }
    if (outcome.kind === 'mismatch') return false;
    this.unavailable(hashPart, served, upstream, outcome.reason);
  }

  /**
   * A NAR downloaded to the disk cache and checked whole, then sent from there. False: it was
   * wrong, try the next cache.
   */
  private async serveDisk(
    req: IncomingMessage,
    res: ServerResponse,
    hashPart: string,
    served: ServedNar,
    upstream: Upstream,
    zstd: boolean,
  ): Promise<boolean> {
    const outcome = await this.fillDisk(hashPart, served, upstream);
    if (outcome.kind === 'mismatch') return false;
    if (outcome.kind === 'ok' && outcome.file !== undefined) {
      if (await this.sendFile(req, res, outcome.file, served, 'ok', zstd)) return true;
      this.unavailable(hashPart, served, upstream, 'the verified NAR left the disk cache');
    }
    this.unavailable(
      hashPart,
      served,
      upstream,
      outcome.kind === 'failed' ? outcome.reason : 'not stored',
    );
  }

  /** Downloads a NAR into the disk cache (shared by requests for the same NAR source). */
  private fillDisk(
    hashPart: string,
    served: ServedNar,
    upstream: Upstream,
  ): Promise<DownloadOutcome & { file?: string }> {
    const key = `${hashPart} ${sourceKey(served)}`;
    const running = this.diskFills.get(key);
    if (running !== undefined) return running;
    const disk = this.disk;
    if (disk === undefined) throw new Error('bug: no disk cache');
    const done = disk
      .fill(
        served.narHash,
        served.narSize,
        (write) => downloadNar(served, upstream, write),
        (r) => r.kind === 'ok',
      )
      .then((filled) => {
        const r = filled.result;
        if (r.kind === 'mismatch') {
          this.outcomes.inc({ outcome: 'mismatch' });
          this.caught(hashPart, served, r.reason, 'next cache');
        }
        return filled.kind === 'ok' ? { ...r, file: filled.file } : r;
      })
      .catch((error: unknown): DownloadOutcome => {
        // The disk failed (full, gone): the NAR is not available from here now.
        this.logger.error('disk cache fill failed', { hashPart, error });
        return { kind: 'failed', reason: 'the disk cache failed' };
      })
      .finally(() => {
        this.diskFills.delete(key);
      });
    this.diskFills.set(key, done);
    return done;
  }

  /**
   * Sends a NAR from the disk cache; false when its file is gone (evicted meanwhile), before
   * anything was sent. Only verified NARs have files there.
   */
  private async sendFile(
    req: IncomingMessage,
    res: ServerResponse,
    file: string,
    served: ServedNar,
    outcome: string,
    zstd: boolean,
  ): Promise<boolean> {
    let handle: FileHandle;
    try {
      handle = await open(file, 'r');
    } catch {
      this.disk?.forget(served.narHash);
      return false;
    }
    let body: NarBody | undefined;
    try {
      body = await this.body(req, res, served.narSize, zstd);
      this.outcomes.inc({ outcome });
      if (req.method === 'HEAD') {
        body.head();
        return true;
      }
      body.begin();
      const file = handle.createReadStream({ highWaterMark: 1 << 20, autoClose: false });
      await pipeline(file, body.sink);
      this.bytes.inc({}, served.narSize);
    } catch {
      // The client went away, or the file could not be read: the response is cut.
      body?.cut();
      res.destroy();
    } finally {
      await handle.close().catch(() => undefined);
    }
    return true;
  }

  /**
   * A large NAR, streamed and checked as it goes. False: it was caught wrong before the
   * response began, try the next cache; once begun, a wrong NAR cuts the response.
   */
  private async serveStream(
    req: IncomingMessage,
    res: ServerResponse,
    hashPart: string,
    served: ServedNar,
    upstream: Upstream,
    zstd: boolean,
  ): Promise<boolean> {
    const head = req.method === 'HEAD';
    // A client that goes away stops the download (not one whose response was sent whole).
    const abort = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) abort.abort();
    };
    res.on('close', onClose);
    const keep = !head && this.cache.accepts(served.narSize);
    const body = await this.body(req, res, served.narSize, zstd);
    const outcome = await streamNar(body, served, upstream, abort.signal, { head, keep });
    res.off('close', onClose);
    if (outcome.kind !== 'failed') this.outcomes.inc({ outcome: outcome.kind });
    if (outcome.kind === 'ok') {
      this.bytes.inc({}, outcome.bytes);
      if (outcome.nar !== undefined) this.cache.put(served.narHash, outcome.nar);
      return true;
    }
    if (outcome.kind === 'mismatch') {
      this.caught(hashPart, served, outcome.reason, 'response cut');
      return body.started;
    }
    if (outcome.started) {
      this.outcomes.inc({ outcome: 'failed' });
      this.logger.warn('NAR download failed', {
        hashPart,
        upstream: upstream.url,
        reason: outcome.reason,
      });
      return true; // the response was cut: Nix retries
    }
    this.unavailable(hashPart, served, upstream, outcome.reason);
  }

  private unavailable(
    hashPart: string,
    served: ServedNar,
    upstream: Upstream,
    reason: string,
  ): never {
    this.outcomes.inc({ outcome: 'failed' });
    this.logger.warn('NAR download failed', { hashPart, upstream: upstream.url, reason });
    throw new ProxyError(
      'unavailable',
      `NAR not available: ${publicReason(reason, served, upstream)}`,
    );
  }

  /** Sends a NAR held in memory (checked already) in one write. */
  private async send(
    req: IncomingMessage,
    res: ServerResponse,
    nar: Buffer,
    outcome: string,
    zstd: boolean,
  ) {
    const body = await this.body(req, res, nar.length, zstd);
    this.outcomes.inc({ outcome });
    if (req.method === 'HEAD') {
      body.head();
      return;
    }
    body.begin();
    body.sink.end(nar);
    this.bytes.inc({}, nar.length);
  }

  /** The upstream a served NAR comes from, if it is still configured. */
  private configured(served: ServedNar): Upstream | undefined {
    return this.resolver.upstreams.find((u) => u.url === served.upstream);
  }

  private upstreamOf(served: ServedNar): Upstream {
    const upstream = this.configured(served);
    if (upstream === undefined)
      throw new ProxyError('no-nar', 'the upstream of this NAR is no longer configured');
    return upstream;
  }

  /** An upstream served something other than the agreed NAR: never use it for this path. */
  private caught(hashPart: string, served: ServedNar, reason: string, what: string) {
    const upstream = served.upstream;
    this.logger.error(`upstream NAR does not match: ${what}`, { hashPart, upstream, reason });
    this.state.markBadUpstream(upstream, hashPart, reason);
    // The answer that sends Nix there goes (not one decided since, with another NAR source).
    if (sameSource(this.state.served(hashPart), served)) {
      this.state.forgetServed(hashPart);
      this.answers.forget(hashPart);
    }
  }

  private fetchWhole(
    hashPart: string,
    served: ServedNar,
    upstream: Upstream,
    ahead: boolean,
  ): Promise<WholeNarOutcome> {
    const key = `${hashPart} ${sourceKey(served)}`;
    const running = this.wholeFetches.get(key);
    if (running !== undefined) return running;
    const done = fetchWholeNar(served, upstream)
      .then((outcome) => {
        if (outcome.kind === 'ok') {
          this.cache.put(served.narHash, outcome.nar);
          this.keepOnDisk(served, outcome.nar);
          if (ahead) this.outcomes.inc({ outcome: 'prefetched' });
        } else if (outcome.kind === 'mismatch') {
          this.outcomes.inc({ outcome: 'mismatch' });
          this.caught(hashPart, served, outcome.reason, ahead ? 'caught ahead' : 'next cache');
        } else if (ahead) {
          // Asked for later, it is fetched again (and a failure reported then).
          this.logger.debug('NAR fetch ahead failed', { hashPart, reason: outcome.reason });
        }
        return outcome;
      })
      .catch((error: unknown): WholeNarOutcome => {
        // Recording a wrong NAR failed (the state is closing): nothing is sent of it anyway.
        this.logger.error('NAR check failed', { hashPart, error });
        return { kind: 'failed', reason: error instanceof Error ? error.message : String(error) };
      })
      .finally(() => {
        this.wholeFetches.delete(key);
      });
    this.wholeFetches.set(key, done);
    return done;
  }

  /** Keeps a small NAR verified in memory on disk too, for the proxy's other clients. */
  private keepOnDisk(served: ServedNar, nar: Buffer): void {
    const disk = this.disk;
    if (disk === undefined || !this.viaDisk(nar.length) || disk.has(served.narHash)) return;
    disk
      .fill(
        served.narHash,
        served.narSize,
        async (write) => {
          await write(nar);
          return true;
        },
        (ok) => ok,
      )
      .catch((error: unknown) => {
        this.logger.warn('could not keep a NAR on disk', { narHash: served.narHash, error });
      });
  }

  /**
   * Nix downloads a NAR right after reading its narinfo: a small NAR is fetched and checked as
   * its trusted answer goes out, so it waits in memory when Nix asks; a wrong one is caught
   * then. Once per kept answer.
   */
  ahead(hashPart: string, answer: Answer): void {
    const { served } = answer;
    if (served === undefined || answer.ahead === true) return;
    answer.ahead = true;
    if (this.closing || !this.config.prefetchNars || served.narSize > WHOLE_NAR_BYTES) return;
    if (!this.cache.accepts(served.narSize) || this.aheadQueue.length >= AHEAD_QUEUED) return;
    this.aheadQueue.push({ hashPart, served });
    this.startAhead();
  }

  private startAhead() {
    while (!this.closing && this.aheadRunning < AHEAD_RUNNING) {
      const next = this.aheadQueue.shift();
      if (next === undefined) return;
      const { hashPart, served } = next;
      // Not a NAR already here or on its way, nor one whose path was decided again since.
      if (
        this.cache.has(served.narHash) ||
        this.wholeFetches.has(`${hashPart} ${sourceKey(served)}`)
      )
        continue;
      let now: ServedNar | undefined;
      try {
        now = this.state.served(hashPart);
      } catch (error) {
        // Called from request handlers: a state that cannot be read stops only this.
        this.logger.error('fetch ahead skipped', { hashPart, error });
        continue;
      }
      if (!sameSource(now, served)) continue;
      const upstream = this.configured(served);
      if (upstream === undefined) continue;
      this.aheadRunning++;
      void this.fetchWhole(hashPart, served, upstream, true)
        .then(() => {
          this.aheadRunning--;
          this.startAhead();
        })
        .catch((error: unknown) => {
          this.logger.error('fetch ahead stopped', { error });
        });
    }
  }

  /** Stops fetching ahead and waits for the fetches under way (before the state closes). */
  async drain(): Promise<void> {
    this.closing = true;
    this.aheadQueue.length = 0;
    await Promise.all(this.wholeFetches.values());
  }
}
