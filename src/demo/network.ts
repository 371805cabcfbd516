/**
 * `accord demo`: a complete Accord network on loopback, state in one directory — three builder
 * logs cosigned by a witness, their binary caches, a monitor following the logs, and a 2-of-3
 * proxy in front of the caches. Builder C tampers with one path (its cache and its log hold
 * other bytes) and builder A alone has another.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { ClaimJson } from '../claim/index.js';
import { lockStore } from '../db/index.js';
import { writeFileCache } from '../host/index.js';
import {
  type LogService,
  newToken,
  parseSubmitters,
  startLogService,
  submitterLine,
} from '../log/index.js';
import { type MonitorService, startMonitor } from '../monitor/index.js';
import {
  NIX_STORE_DIR,
  formatNixPublicKey,
  formatNixSecretKey,
  generateNixSecretKey,
  parseNixSecretKey,
} from '../nix/index.js';
import { parseReporters } from '../demand/index.js';
import { parsePolicy } from '../policy/index.js';
import { type ProxyService, loadProxyConfig, startProxy } from '../proxy/index.js';
import type { Logger } from '../server/index.js';
import { submitClaims } from '../submit/index.js';
import {
  SIG_TYPE_COSIGNATURE_V1,
  SIG_TYPE_ED25519,
  formatVerifierKey,
  generateKey,
  parseSignerKey,
  parseVerifierKey,
} from '../tlog/index.js';
import { type WitnessService, startWitness } from '../witness/index.js';
import {
  type DemoBuilds,
  type DemoPath,
  buildWithNix,
  generatedBuilds,
  tamperedClaim,
} from './builds.js';

export const BUILDERS = ['a', 'b', 'c'] as const;
export type Builder = (typeof BUILDERS)[number];

export interface DemoOptions {
  /** Where all state lives (keys, databases, caches); reused by the next run. */
  readonly dir: string;
  /** The proxy listens here, the logs on the next three ports, then the witness and monitor; 0: any free ports. */
  readonly portBase: number;
  /** Build with the local Nix (else generated claims). */
  readonly withNix: boolean;
  /** A logger for each server, by name. */
  readonly logger: (name: string) => Logger;
  /** Called as each step starts. */
  readonly onStep?: (text: string) => void;
  /** The proxy's clock, for tests (demand is counted and reported by it). */
  readonly now?: () => number;
}

export interface DemoNetwork {
  readonly dir: string;
  readonly builds: DemoBuilds;
  readonly logs: readonly { name: string; origin: string; url: string; vkey: string }[];
  readonly witness: { url: string; vkey: string };
  readonly monitor: { url: string };
  readonly proxy: { url: string; publicKey: string };
  /**
   * Adds paths to a builder: its cache serves them, its log publishes their claims, and the
   * monitor reads them before this resolves.
   */
  publish(builder: Builder, paths: readonly { claim: ClaimJson; nar: Buffer }[]): Promise<void>;
  /** Sends the proxy's demand reports of the periods ended now (it also does every minute). */
  reportDemand(): Promise<void>;
  close(): Promise<void>;
}

/** The file's text, made by `make` (and written) the first time. */
function kept(path: string, make: () => string): string {
  if (!existsSync(path)) writeFileSync(path, make(), { mode: 0o600 });
  return readFileSync(path, 'utf8').trim();
}

/** What each builder built, claims and serves. */
function builderPaths(builder: Builder, builds: DemoBuilds): { claim: ClaimJson; nar: Buffer }[] {
  const shared: DemoPath[] = [builds.lib, builds.app];
  if (builder === 'c')
    return [...shared, { claim: tamperedClaim(builds), nar: builds.tamperedNar }];
  return [...shared, builds.tampered, ...(builder === 'a' ? [builds.single] : [])];
}

async function waitForSize(log: LogService, size: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if ((await log.storage.state()).treeSize >= size) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`log did not publish ${size} entries within 15 s`);
}

/** Starts the whole network; resolves once every claim is published and the monitor has read them. */
export async function startDemo(options: DemoOptions): Promise<DemoNetwork> {
  const { dir, logger } = options;
  const step = options.onStep ?? (() => undefined);
  mkdirSync(join(dir, 'keys'), { recursive: true });
  lockStore({ kind: 'sqlite', path: join(dir, 'demo') });
  const port = (offset: number) => (options.portBase === 0 ? 0 : options.portBase + offset);
  const salt = kept(join(dir, 'salt'), () => randomBytes(8).toString('hex'));
  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  };
  try {
    step(
      options.withNix
        ? 'building four small derivations with Nix'
        : 'generating claims (no Nix here)',
    );
    const builds = options.withNix ? await buildWithNix(dir, salt) : generatedBuilds(salt);

    const witnessKey = parseSignerKey(
      kept(
        join(dir, 'keys', 'witness.key'),
        () => generateKey('demo.accord.example/witness', SIG_TYPE_COSIGNATURE_V1).signerKey,
      ),
    );
    const logKeys = BUILDERS.map((b) =>
      parseSignerKey(
        kept(
          join(dir, 'keys', `builder-${b}.key`),
          () => generateKey(`demo.accord.example/builder-${b}`, SIG_TYPE_ED25519).signerKey,
        ),
      ),
    );
    step('starting the witness and three builder logs');
    const witness: WitnessService = await startWitness({
      signer: witnessKey,
      logs: logKeys.map((k) => parseVerifierKey(formatVerifierKey(k))),
      store: { kind: 'sqlite', path: join(dir, 'witness.db') },
      host: '127.0.0.1',
      port: port(4),
      logger: logger('witness'),
    });
    closers.push(() => witness.close());
    const witnessVkey = formatVerifierKey(witnessKey);
    const token = newToken();
    const logs: { builder: Builder; signer: (typeof logKeys)[number]; service: LogService }[] = [];
    for (const [i, builder] of BUILDERS.entries()) {
      const signer = logKeys[i];
      if (signer === undefined) throw new Error('bug: a builder without a key');
      const service = await startLogService({
        origin: signer.name,
        signer,
        store: { kind: 'sqlite', path: join(dir, `builder-${builder}.db`) },
        host: '127.0.0.1',
        port: port(1 + i),
        submitters: parseSubmitters(submitterLine(`builder-${builder}`, token)),
        storeDir: NIX_STORE_DIR,
        intervalMs: 200,
        maxBodyBytes: 1 << 20,
        witnesses: [{ url: witness.url, verifier: parseVerifierKey(witnessVkey) }],
        logger: logger(`log-${builder}`),
      });
      closers.push(() => service.close());
      logs.push({ builder, signer, service });
    }

    step('each builder fills its cache and submits its claims');
    const publishTo = async (
      builder: Builder,
      paths: readonly { claim: ClaimJson; nar: Buffer }[],
    ) => {
      const { service } = logs.find((l) => l.builder === builder) as (typeof logs)[number];
      writeFileCache(join(dir, `cache-${builder}`), paths);
      const size = (await service.storage.state()).treeSize;
      await submitClaims(
        { url: service.url, token },
        paths.map((p) => p.claim),
      );
      await waitForSize(service, size + paths.length);
    };
    for (const { builder } of logs) await publishTo(builder, builderPaths(builder, builds));

    const policyText = [
      ...logs.map((log) => `log ${formatVerifierKey(log.signer)} ${log.service.url}`),
      `trust builders 2 ${logs.map((log) => log.signer.name).join(' ')}`,
      'decide builders',
      `witness W ${witnessVkey} ${witness.url}`,
      'quorum W',
      '',
    ].join('\n');
    writeFileSync(join(dir, 'policy'), policyText);

    // The proxy's key signs its narinfos and the demand it reports to the monitor.
    const proxyKey = parseNixSecretKey(
      kept(join(dir, 'keys', 'proxy.sk'), () =>
        formatNixSecretKey(generateNixSecretKey('accord-demo-proxy-1')),
      ),
    );
    step('starting the monitor and reading every log');
    const monitor: MonitorService = await startMonitor({
      policy: parsePolicy(policyText),
      statePath: join(dir, 'monitor.db'),
      storeDir: NIX_STORE_DIR,
      logger: logger('monitor'),
      intervalMs: 5000,
      timeoutMs: 5000,
      concurrency: 4,
      listen: { host: '127.0.0.1', port: port(5) },
      caches: new Map(
        logs.map((log) => [log.signer.name, `file://${join(dir, `cache-${log.builder}`)}`]),
      ),
      reporters: parseReporters(formatNixPublicKey(proxyKey)),
    });
    closers.push(() => monitor.close());
    await monitor.pollAll();

    step('starting the 2-of-3 proxy');
    // Builder C's cache is the preferred one: the proxy must catch its bytes.
    const upstreams = (['c', 'a', 'b'] as const).map(
      (b, i) =>
        `[[upstream]]\nurl = "file://${join(dir, `cache-${b}`)}"\npriority = ${10 * (i + 1)}\n`,
    );
    writeFileSync(
      join(dir, 'proxy.toml'),
      [
        `listen = "127.0.0.1:${port(0)}"`,
        'signing-key = "keys/proxy.sk"',
        'policy = "policy"',
        'state = "proxy.db"',
        `monitors = ["${monitor.url ?? ''}"]`,
        '',
        ...upstreams,
        '',
        // Every path asked for once a minute is reported: the dashboard's demand fills in.
        `[demand]\nmonitor = "${monitor.url ?? ''}"\nperiod-seconds = 60\nmin-requests = 1\n`,
      ].join('\n'),
    );
    const proxy: ProxyService = await startProxy(
      loadProxyConfig(join(dir, 'proxy.toml')),
      logger('proxy'),
      undefined,
      options.now === undefined ? {} : { now: options.now },
    );
    closers.push(() => proxy.close());

    return {
      dir,
      builds,
      logs: logs.map((log) => ({
        name: `builder ${log.builder.toUpperCase()}`,
        origin: log.signer.name,
        url: log.service.url,
        vkey: formatVerifierKey(log.signer),
      })),
      witness: { url: witness.url, vkey: witnessVkey },
      monitor: { url: monitor.url ?? '' },
      proxy: { url: proxy.url, publicKey: formatNixPublicKey(proxyKey) },
      async reportDemand() {
        await proxy.demand?.sendDue();
      },
      async publish(builder, paths) {
        await publishTo(builder, paths);
        await monitor.pollAll();
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
