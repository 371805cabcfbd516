/** The proxy's configuration file (TOML), parsed strictly; see docs/proxy.md. */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parse } from 'smol-toml';
import {
  GUIX_STORE_DIR,
  NIX_STORE_DIR,
  type NixPublicKey,
  type NixSecretKey,
  checkStoreDir,
  parseNixSecretKey,
} from '../nix/index.js';
import {
  MAX_DEMAND_PATHS,
  MAX_PERIOD_SECONDS,
  MIN_PERIOD_SECONDS,
  demandSigner,
} from '../demand/index.js';
import { type GuixPublicKey, type GuixSecretKey, parseGuixSecretKey } from '../guix/index.js';
import { type Policy, parseCacheKey, parsePolicy } from '../policy/index.js';
import { type TlsFiles, readTls } from '../server/index.js';
import { type NetrcEntry, netrcAuthorization, parseNetrc } from './netrc.js';

/** An upstream binary cache the proxy fetches narinfos and NARs from. */
export interface UpstreamConfig {
  readonly url: string;
  /** When given, an upstream narinfo must carry a valid signature by one of these keys. */
  readonly publicKeys: readonly NixPublicKey[];
  /** The same for a Guix proxy's upstreams: Guix keys. */
  readonly guixKeys: readonly GuixPublicKey[];
  /** Lower is preferred, as in nix-cache-info. */
  readonly priority: number;
  /** Only sometimes online (a laptop, a LAN box): failures back off longer and log quietly. */
  readonly intermittent: boolean;
  readonly timeoutMs: number;
  /**
   * The `Authorization` header sent with every request to it (a bearer token from its
   * `token-file`, or Basic from the config's `netrc-file`); never logged.
   */
  readonly authorization?: string;
}

/** Demand reporting: request counts per path per period, sent to one monitor. */
export interface DemandConfig {
  /** The monitor's URL (reports go to `<url>/demand`). */
  readonly monitor: string;
  readonly periodSeconds: number;
  /** A path requested fewer times in a period is not reported. */
  readonly minRequests: number;
  /** Most paths in one report: beyond, the least requested of the period are left out. */
  readonly maxPaths: number;
}

/**
 * A Guix proxy's key: narinfos are signed `Signature: 1;<host>;…` by it, and Guix clients
 * authorise its public key (`guix archive --authorize`).
 */
export interface GuixSigningKey {
  readonly guix: GuixSecretKey;
  readonly host: string;
}

/** Everything `accord proxy` runs with. */
export interface ProxyConfig {
  readonly listen: string;
  /** A Nix secret key, or a Guix key for a proxy serving Guix clients. */
  readonly signingKey: NixSecretKey | GuixSigningKey;
  /**
   * More Nix keys every narinfo is also signed with (`signing-key` as a list, during a key
   * rotation: Nix accepts a narinfo with one `Sig` by any key it trusts).
   */
  readonly moreSigningKeys: readonly NixSecretKey[];
  readonly policy: Policy;
  readonly statePath: string;
  readonly storeDir: string;
  readonly priority: number;
  readonly logTimeoutMs: number;
  readonly narinfoDeadlineMs: number;
  readonly cacheTtlSeconds: number;
  readonly negativeTtlSeconds: number;
  /** A cache's signature verified earlier counts while it is offline, up to this age. */
  readonly storedSignatureMaxAgeMs: number;
  /** How often an identity log's key statements are read again (a revocation counts from then). */
  readonly statementRefreshMs: number;
  /** Memory for verified NARs served again without the upstream (0: none). */
  readonly narCacheBytes: number;
  /** Where verified NARs are kept on disk, shared by every client (the site's cache). */
  readonly narDiskDir: string;
  /** Disk for verified NARs (0: no disk cache, and NARs above the small ones stream). */
  readonly narDiskBytes: number;
  /**
   * NARs up to this size are downloaded to disk and verified whole before the first byte is
   * sent (so a wrong one never fails a build while another cache has the right one); larger
   * ones stream, checked as they go.
   */
  readonly verifyBeforeSendBytes: number;
  /** Decide a trusted path's references before Nix asks (one batched lookup per log). */
  readonly prefetchReferences: boolean;
  /** Fetch and check a small NAR when its narinfo is answered, before Nix asks for it. */
  readonly prefetchNars: boolean;
  readonly upstreams: readonly UpstreamConfig[];
  /** Monitors to hand every checkpoint seen to (`<url>/checkpoints`). */
  readonly monitors: readonly string[];
  /** Serve HTTPS with this certificate and key (re-read when they change). */
  readonly tls?: TlsFiles;
  /** Report demand to a monitor, when configured (`[demand]`). */
  readonly demand?: DemandConfig;
  /** Offer verified NARs zstd-compressed to clients on other machines (`serve-zstd`). */
  readonly zstd?: ZstdConfig;
}

/** How NARs are compressed for clients on other machines. */
export interface ZstdConfig {
  /** The zstd command (a name looked up on PATH, or a path). */
  readonly command: string;
  /** Its compression level, 1 to 19. */
  readonly level: number;
  /** Most compressors running at once; past them a NAR goes in a frame of raw blocks. */
  readonly processes: number;
}

const TOP_KEYS = new Set([
  'listen',
  'signing-key',
  'policy',
  'state',
  'store-dir',
  'priority',
  'log-timeout-ms',
  'upstream-timeout-ms',
  'narinfo-deadline-ms',
  'cache-ttl-seconds',
  'negative-ttl-seconds',
  'stored-signature-max-age-days',
  'statement-refresh-seconds',
  'nar-cache-mib',
  'nar-disk-cache',
  'nar-disk-cache-mib',
  'verify-before-send-mib',
  'prefetch-references',
  'prefetch-nars',
  'upstream',
  'monitors',
  'tls-cert',
  'tls-key',
  'netrc-file',
  'demand',
  'serve-zstd',
  'zstd-level',
  'zstd-processes',
  'zstd-command',
]);
const DEMAND_KEYS = new Set(['monitor', 'period-seconds', 'min-requests', 'max-paths']);
const UPSTREAM_KEYS = new Set([
  'url',
  'public-keys',
  'priority',
  'intermittent',
  'timeout-ms',
  'token-file',
]);

/** Whether credentials may go to `url`: over HTTPS, or over HTTP to this machine only. */
function credentialsSafe(url: string): boolean {
  const { protocol, hostname } = new URL(url);
  return protocol === 'https:' || ['127.0.0.1', 'localhost', '[::1]'].includes(hostname);
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

function checkKeys(table: Record<string, unknown>, allowed: Set<string>, where: string): void {
  for (const key of Object.keys(table)) {
    if (!allowed.has(key)) throw new ConfigError(`${where}: unknown key ${JSON.stringify(key)}`);
  }
}

function str(table: Record<string, unknown>, key: string, where: string): string | undefined {
  const v = table[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '')
    throw new ConfigError(`${where}: ${key} must be a non-empty string`);
  return v;
}

function int(
  table: Record<string, unknown>,
  key: string,
  where: string,
  fallback: number,
  max: number,
): number {
  const v = table[key] ?? fallback;
  if (typeof v === 'bigint' && v >= 0n && v <= BigInt(max)) return Number(v);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) {
    throw new ConfigError(`${where}: ${key} must be an integer from 0 to ${max}`);
  }
  return v;
}

/** Reads the `[demand]` table; the signing key's name must be able to name a note key. */
function demandConfig(
  raw: unknown,
  signingKey: NixSecretKey | GuixSigningKey,
): DemandConfig | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new ConfigError('config: demand must be a [demand] table');
  if ('guix' in signingKey)
    throw new ConfigError(
      'demand: reports are signed with a Nix key; a proxy with a Guix signing-key cannot send them',
    );
  const table = raw as Record<string, unknown>;
  checkKeys(table, DEMAND_KEYS, 'demand');
  const monitor = str(table, 'monitor', 'demand');
  if (monitor === undefined || !/^https?:\/\/\S+$/.test(monitor))
    throw new ConfigError('demand: monitor must be an http(s):// URL');
  try {
    demandSigner(signingKey);
  } catch (cause) {
    throw new ConfigError(`demand: the signing key signs the reports: ${(cause as Error).message}`);
  }
  const periodSeconds = int(table, 'period-seconds', 'demand', 3600, MAX_PERIOD_SECONDS);
  if (periodSeconds < MIN_PERIOD_SECONDS)
    throw new ConfigError(
      `demand: period-seconds must be from ${MIN_PERIOD_SECONDS} to ${MAX_PERIOD_SECONDS}`,
    );
  const minRequests = int(table, 'min-requests', 'demand', 3, 1_000_000);
  const maxPaths = int(table, 'max-paths', 'demand', 1000, MAX_DEMAND_PATHS);
  if (minRequests < 1 || maxPaths < 1)
    throw new ConfigError('demand: min-requests and max-paths must be at least 1');
  return { monitor: monitor.replace(/\/+$/, ''), periodSeconds, minRequests, maxPaths };
}

/** Parses a config file's text; relative paths are resolved from `baseDir`. */
export function parseProxyConfig(text: string, baseDir: string): ProxyConfig {
  let doc: Record<string, unknown>;
  try {
    doc = parse(text);
  } catch (cause) {
    throw new ConfigError(
      `not valid TOML: ${cause instanceof Error ? cause.message : String(cause)}`,
    );
  }
  checkKeys(doc, TOP_KEYS, 'config');
  const path = (key: string, fallback?: string): string => {
    const v = str(doc, key, 'config') ?? fallback;
    if (v === undefined) throw new ConfigError(`config: ${key} is required`);
    return resolve(baseDir, v);
  };
  const readText = (key: string): string => {
    const file = path(key);
    try {
      return readFileSync(file, 'utf8');
    } catch (cause) {
      throw new ConfigError(`config: cannot read ${key} ${file}: ${(cause as Error).message}`);
    }
  };
  const keyFiles = doc['signing-key'];
  if (keyFiles === undefined) throw new ConfigError('config: signing-key is required');
  const keyNames = Array.isArray(keyFiles) ? (keyFiles as unknown[]) : [keyFiles];
  if (
    keyNames.length === 0 ||
    keyNames.length > 8 ||
    !keyNames.every((k) => typeof k === 'string' && k !== '')
  )
    throw new ConfigError('config: signing-key must be a key file, or a list of 1 to 8 of them');
  const keys = (keyNames as string[]).map((name) => {
    const file = resolve(baseDir, name);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (cause) {
      throw new ConfigError(`config: cannot read signing-key ${file}: ${(cause as Error).message}`);
    }
    return readSigningKey(text, file);
  });
  const [signingKey, ...others] = keys as [NixSecretKey | GuixSigningKey, ...typeof keys];
  const moreSigningKeys = others.map((k) => {
    if ('guix' in k || 'guix' in signingKey)
      throw new ConfigError(
        'config: signing-key: only Nix keys can sign together (a Guix narinfo has one Signature)',
      );
    return k;
  });
  if (new Set(keys.map((k) => ('guix' in k ? '' : k.name))).size !== keys.length)
    throw new ConfigError('config: signing-key: two keys have the same name');
  let policy: Policy;
  try {
    policy = parsePolicy(readText('policy'));
  } catch (cause) {
    throw new ConfigError(`config: policy: ${(cause as Error).message}`);
  }
  const guix = 'guix' in signingKey;
  const storeDir = str(doc, 'store-dir', 'config') ?? (guix ? GUIX_STORE_DIR : NIX_STORE_DIR);
  checkStoreDir(storeDir);
  const upstreamTimeout = int(doc, 'upstream-timeout-ms', 'config', 3000, 600_000);
  let netrc: Map<string, NetrcEntry> | undefined;
  if (doc['netrc-file'] !== undefined) {
    try {
      netrc = parseNetrc(readText('netrc-file'));
    } catch (cause) {
      throw new ConfigError(`config: netrc-file: ${(cause as Error).message}`);
    }
  }
  const rawUpstreams = doc.upstream ?? [];
  if (!Array.isArray(rawUpstreams))
    throw new ConfigError('config: upstream must be [[upstream]] tables');
  const upstreams = rawUpstreams.map((raw: unknown, i): UpstreamConfig => {
    const where = `upstream ${i + 1}`;
    if (typeof raw !== 'object' || raw === null) throw new ConfigError(`${where}: not a table`);
    const table = raw as Record<string, unknown>;
    checkKeys(table, UPSTREAM_KEYS, where);
    const url = str(table, 'url', where);
    if (url === undefined || !/^(?:https?|file):\/\/\S+$/.test(url)) {
      throw new ConfigError(`${where}: url must be an http(s):// or file:// URL`);
    }
    const keyTexts = table['public-keys'] ?? [];
    if (!Array.isArray(keyTexts) || !keyTexts.every((k) => typeof k === 'string')) {
      throw new ConfigError(
        `${where}: public-keys must be a list of keys (name:base64, or guix:<hex of q>)`,
      );
    }
    const keys = keyTexts.map((k: string) => {
      try {
        return parseCacheKey(k);
      } catch (cause) {
        throw new ConfigError(`${where}: public-keys: ${(cause as Error).message}`);
      }
    });
    const intermittent = table.intermittent ?? false;
    if (typeof intermittent !== 'boolean')
      throw new ConfigError(`${where}: intermittent must be true or false`);
    let authorization: string | undefined;
    if (table['token-file'] !== undefined) {
      const file = resolve(baseDir, str(table, 'token-file', where) ?? '');
      let token: string;
      try {
        token = readFileSync(file, 'utf8').trim();
      } catch (cause) {
        throw new ConfigError(
          `${where}: cannot read token-file ${file}: ${(cause as Error).message}`,
        );
      }
      if (!/^[A-Za-z0-9._~+/=-]{1,4096}$/.test(token))
        throw new ConfigError(`${where}: token-file ${file} does not hold one bearer token`);
      authorization = `Bearer ${token}`;
    } else if (netrc !== undefined && !url.startsWith('file:')) {
      authorization = netrcAuthorization(netrc, url);
    }
    if (authorization !== undefined && !credentialsSafe(url)) {
      throw new ConfigError(
        `${where}: credentials for ${url} would cross the network in clear text: use https://`,
      );
    }
    return {
      url: url.replace(/\/+$/, ''),
      ...(authorization === undefined ? {} : { authorization }),
      publicKeys: keys.flatMap((k) => ('nix' in k ? [k.nix] : [])),
      guixKeys: keys.flatMap((k) => ('guix' in k ? [k.guix] : [])),
      priority: int(table, 'priority', where, 50, 1_000_000),
      intermittent,
      timeoutMs: int(table, 'timeout-ms', where, upstreamTimeout, 600_000),
    };
  });
  // The policy's caches are upstreams too (their narinfos are fetched for their votes, and
  // their NARs are as good as any other's, as every NAR is checked).
  for (const cache of policy.caches) {
    if (upstreams.some((u) => u.url === cache.url)) continue;
    upstreams.push({
      url: cache.url,
      publicKeys: [],
      guixKeys: [],
      priority: 50,
      intermittent: false,
      timeoutMs: upstreamTimeout,
    });
  }
  if (upstreams.length === 0)
    throw new ConfigError('config: at least one [[upstream]] (or a cache in the policy) is needed');
  const flag = (key: string) => {
    const value = doc[key] ?? true;
    if (typeof value !== 'boolean') throw new ConfigError(`config: ${key} must be true or false`);
    return value;
  };
  const monitors = doc.monitors ?? [];
  if (
    !Array.isArray(monitors) ||
    !monitors.every((m) => typeof m === 'string' && /^https?:\/\/\S+$/.test(m))
  ) {
    throw new ConfigError('config: monitors must be a list of http(s):// URLs');
  }
  let tls: TlsFiles | undefined;
  if (doc['tls-cert'] !== undefined || doc['tls-key'] !== undefined) {
    tls = { cert: path('tls-cert'), key: path('tls-key') };
    try {
      readTls(tls);
    } catch (cause) {
      throw new ConfigError(`config: ${(cause as Error).message}`);
    }
  }
  const demand = demandConfig(doc.demand, signingKey);
  const zstd = zstdConfig(doc, baseDir, guix);
  return {
    listen: str(doc, 'listen', 'config') ?? '127.0.0.1:8081',
    signingKey,
    moreSigningKeys,
    policy,
    statePath: path('state', 'accord-proxy.db'),
    storeDir,
    priority: int(doc, 'priority', 'config', 30, 1_000_000),
    logTimeoutMs: int(doc, 'log-timeout-ms', 'config', 2000, 600_000),
    narinfoDeadlineMs: int(doc, 'narinfo-deadline-ms', 'config', 5000, 600_000),
    cacheTtlSeconds: int(doc, 'cache-ttl-seconds', 'config', 60, 86_400),
    negativeTtlSeconds: int(doc, 'negative-ttl-seconds', 'config', 10, 86_400),
    storedSignatureMaxAgeMs:
      int(doc, 'stored-signature-max-age-days', 'config', 30, 36_500) * 86_400_000,
    statementRefreshMs: int(doc, 'statement-refresh-seconds', 'config', 60, 86_400) * 1000,
    narCacheBytes: int(doc, 'nar-cache-mib', 'config', 256, 1 << 20) * (1 << 20),
    narDiskDir: path('nar-disk-cache', 'accord-proxy-nars'),
    narDiskBytes: int(doc, 'nar-disk-cache-mib', 'config', 20_480, 1 << 30) * 2 ** 20,
    verifyBeforeSendBytes: int(doc, 'verify-before-send-mib', 'config', 4096, 1 << 30) * 2 ** 20,
    prefetchReferences: flag('prefetch-references'),
    prefetchNars: flag('prefetch-nars'),
    upstreams: [...upstreams].sort((a, b) => a.priority - b.priority),
    monitors: monitors.map((m: string) => m.replace(/\/+$/, '')),
    ...(tls === undefined ? {} : { tls }),
    ...(demand === undefined ? {} : { demand }),
    ...(zstd === undefined ? {} : { zstd }),
  };
}

/** `serve-zstd` and its settings; the zstd settings without it are a mistake, not ignored. */
function zstdConfig(
  doc: Record<string, unknown>,
  baseDir: string,
  guix: boolean,
): ZstdConfig | undefined {
  const on = doc['serve-zstd'] ?? false;
  if (typeof on !== 'boolean') throw new ConfigError('config: serve-zstd must be true or false');
  if (on && guix)
    throw new ConfigError(
      'config: serve-zstd is for Nix clients; a proxy with a Guix signing-key serves plain NARs',
    );
  if (!on) {
    const stray = ['zstd-level', 'zstd-processes', 'zstd-command'].find((k) => k in doc);
    if (stray !== undefined)
      throw new ConfigError(`config: ${stray} is set but serve-zstd is not true`);
    return undefined;
  }
  const from1 = (key: string, fallback: number, max: number) => {
    const v = doc[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > max)
      throw new ConfigError(`config: ${key} must be an integer from 1 to ${max}`);
    return v;
  };
  const level = from1('zstd-level', 3, 19);
  const processes = from1('zstd-processes', 4, 64);
  const command = str(doc, 'zstd-command', 'config') ?? 'zstd';
  // A bare name is looked up on PATH; a path is relative to the config file, like the others.
  return { command: command.includes('/') ? resolve(baseDir, command) : command, level, processes };
}

/**
 * The proxy's signing key: a Nix secret key (`nix key generate-secret`), or a Guix secret key
 * (`guix archive --generate-key`, `/etc/guix/signing-key.sec`), which makes it a Guix proxy.
 */
function readSigningKey(text: string, file: string): NixSecretKey | GuixSigningKey {
  if (text.startsWith('PRIVATE+KEY+'))
    throw new ConfigError(
      `config: signing-key ${file} is a log key ('accord keygen'); the proxy signs narinfos with a Nix secret key (nix key generate-secret --key-name NAME) or a Guix one (guix archive --generate-key)`,
    );
  try {
    if (text.trimStart().startsWith('(')) {
      const host = hostname()
        .replace(/[^A-Za-z0-9._-]/g, '')
        .slice(0, 253);
      return { guix: parseGuixSecretKey(text), host: host === '' ? 'accord-proxy' : host };
    }
    return parseNixSecretKey(text);
  } catch (cause) {
    throw new ConfigError(`config: signing-key: ${(cause as Error).message}`);
  }
}

/** Reads and parses a config file. */
export function loadProxyConfig(file: string): ProxyConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new ConfigError(`cannot read config ${file}: ${(cause as Error).message}`);
  }
  return parseProxyConfig(text, dirname(resolve(file)));
}
