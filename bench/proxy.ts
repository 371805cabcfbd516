/**
 * The proxy beside the baselines it replaces, in the same run: warm narinfo answers against
 * nginx serving the same files; cold decisions against the bare network round trips they
 * need; verified NAR streaming against nginx serving the NAR; and (with Nix) substituting a
 * 200-path closure through the proxy against directly from the cache.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClaimJson } from '../src/claim/index.js';
import { newToken, submitterLine } from '../src/log/index.js';
import {
  encodeNix32,
  formatNarInfo,
  formatNixPublicKey,
  formatNixSecretKey,
  generateNixSecretKey,
  parseStorePath,
  writeNar,
} from '../src/nix/index.js';
import {
  SIG_TYPE_ED25519,
  formatVerifierKey,
  generateKey,
  parseSignerKey,
} from '../src/tlog/index.js';
import { type Row, formatTime } from './harness.js';
import {
  type Running,
  have,
  startAccord,
  startNginx,
  startNodeRelay,
  startRelay,
  wrk,
} from './processes.js';

const MB = 1_000_000;

interface Env {
  dir: string;
  cache: string;
  logs: Running[];
  tokens: string[];
  policy: string;
  proxyKey: string;
  stop: (() => Promise<void>)[];
}

async function startLogs(
  dir: string,
): Promise<{ logs: Running[]; tokens: string[]; policy: string }> {
  const logs: Running[] = [];
  const tokens: string[] = [];
  const lines: string[] = [];
  for (let i = 1; i <= 3; i++) {
    const d = join(dir, `log${i}`);
    mkdirSync(d, { recursive: true });
    const { signerKey } = generateKey(`bench${i}.example/log`, SIG_TYPE_ED25519);
    writeFileSync(join(d, 'log.key'), `${signerKey}\n`);
    const token = newToken();
    writeFileSync(join(d, 'submitters'), submitterLine('bench', token));
    const log = await startAccord([
      'log',
      'serve',
      '--key',
      join(d, 'log.key'),
      '--submitters',
      join(d, 'submitters'),
      '--store',
      `sqlite:${join(d, 'log.db')}`,
      '--listen',
      '127.0.0.1:0',
      '--interval',
      '100',
    ]);
    logs.push(log);
    tokens.push(token);
    lines.push(`log ${formatVerifierKey(parseSignerKey(signerKey))} ${log.url}`);
  }
  lines.push(
    'trust builders 2 bench1.example/log bench2.example/log bench3.example/log',
    'decide builders',
    'quorum none',
    '',
  );
  return { logs, tokens, policy: lines.join('\n') };
}

async function submitAll(env: Env, claims: readonly ClaimJson[]): Promise<void> {
  await Promise.all(
    env.logs.map(async (log, i) => {
      for (let k = 0; k < claims.length; k += 1000) {
        const res = await fetch(`${log.url}/submit`, {
          method: 'POST',
          headers: {
            Authorization: `Bearer ${env.tokens[i] ?? ''}`,
            'Content-Type': 'application/json',
          },
          body: JSON.stringify({ claims: claims.slice(k, k + 1000) }),
        });
        if (!res.ok) throw new Error(`submit: HTTP ${res.status}`);
      }
    }),
  );
  // Wait until every log has published them.
  for (const log of env.logs) {
    for (;;) {
      const size = Number((await (await fetch(`${log.url}/checkpoint`)).text()).split('\n')[1]);
      if (size >= claims.length) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Writes a path's NAR (compression none) and narinfo into the cache; returns its claim. */
function addToCache(
  cache: string,
  name: string,
  contents: () => Iterable<Uint8Array>,
  size: number,
  references: readonly string[] = [],
): { hashPart: string; claim: ClaimJson } {
  const hashPart = encodeNix32(createHash('sha1').update(name).digest());
  const fd = openSync(join(cache, 'nar', `${hashPart}.nar`), 'w');
  const hash = createHash('sha256');
  let narSize = 0;
  for (const chunk of writeNar({ type: 'regular', executable: false, size, contents })) {
    writeSync(fd, chunk);
    hash.update(chunk);
    narSize += chunk.length;
  }
  closeSync(fd);
  const narHash = { algorithm: 'sha256' as const, digest: hash.digest() };
  const path = `/nix/store/${hashPart}-${name}`;
  writeFileSync(
    join(cache, `${hashPart}.narinfo`),
    formatNarInfo({
      storePath: parseStorePath(path),
      url: `nar/${hashPart}.nar`,
      compression: 'none',
      narHash,
      narSize,
      references,
      sigs: [],
    }),
  );
  return {
    hashPart,
    claim: {
      storePath: path,
      narHash: `sha256:${encodeNix32(narHash.digest)}`,
      narSize,
      references: [...references].sort(),
    },
  };
}

async function startProxy(
  env: Env,
  state: string,
  extra = '',
  where: { policy: string; cache: string } = { policy: 'policy', cache: env.cache },
): Promise<Running> {
  const conf = join(env.dir, `proxy-${state}.toml`);
  writeFileSync(
    conf,
    `signing-key = "proxy.sk"\npolicy = "${where.policy}"\nstate = "${state}.db"\nlisten = "127.0.0.1:0"\n` +
      `nar-disk-cache = "${state}-nars"\ncache-ttl-seconds = 3600\n${extra}` +
      `[[upstream]]\nurl = "${where.cache}"\n`,
  );
  return startAccord([
    'proxy',
    '--config',
    conf,
    '--log-level',
    process.env.ACCORD_BENCH_LOGS === undefined ? 'error' : 'debug',
  ]);
}

const percentile = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;

/** A cache served by nginx, three logs, a policy over them and a proxy key. */
async function setUp() {
  const dir = mkdtempSync(join(tmpdir(), 'accord-bench-proxy-'));
  const cacheDir = join(dir, 'cache');
  mkdirSync(join(cacheDir, 'nar'), { recursive: true });
  writeFileSync(join(cacheDir, 'nix-cache-info'), 'StoreDir: /nix/store\n');
  const nginx = await startNginx(cacheDir, dir);
  const { logs, tokens, policy } = await startLogs(dir);
  writeFileSync(join(dir, 'policy'), policy);
  const key = generateNixSecretKey('bench-proxy-1');
  writeFileSync(join(dir, 'proxy.sk'), formatNixSecretKey(key));
  const env: Env = {
    dir,
    cache: nginx.url,
    logs,
    tokens,
    policy,
    proxyKey: formatNixPublicKey(key),
    stop: [],
  };
  return { dir, cacheDir, env, stops: [nginx, ...logs] };
}

export async function benchProxy(seconds: number, withNix: boolean): Promise<Row[]> {
  if (!have('nginx', ['-v']) || !have('wrk', ['-v'])) {
    process.stdout.write(
      '(nginx or wrk missing: run scripts/install-test-deps.sh; skipping the proxy benchmarks)\n',
    );
    return [];
  }
  const { dir, cacheDir, env, stops } = await setUp();
  const { logs } = env;
  const nginx = stops[0] as Running;
  const rows: Row[] = [];
  try {
    // 300 small paths and one 512 MB path, claimed by all three builders.
    const small = Array.from({ length: 300 }, (_, i) => {
      const data = Buffer.from(`small path ${i}\n`.repeat(20));
      return addToCache(cacheDir, `small-${i}`, () => [data], data.length);
    });
    const block = randomBytes(1 << 20);
    const bigSize = 512 * (1 << 20);
    const big = addToCache(cacheDir, 'big', () => Array<Uint8Array>(512).fill(block), bigSize);
    await submitAll(env, [...small.map((s) => s.claim), big.claim]);

    // Cold decisions: a fresh proxy, each path asked once, one after another.
    const proxy = await startProxy(env, 'cold');
    stops.push(proxy);
    const cold: number[] = [];
    const floor: number[] = [];
    for (const s of small.slice(0, 200)) {
      let t = performance.now();
      const res = await fetch(`${proxy.url}/${s.hashPart}.narinfo`);
      if (res.status !== 200) throw new Error(`proxy refused ${s.hashPart}: ${await res.text()}`);
      await res.text();
      cold.push(performance.now() - t);
      t = performance.now();
      await Promise.all(
        logs.map(async (l) => (await fetch(`${l.url}/lookup/${s.hashPart}`)).text()),
      );
      await (await fetch(`${nginx.url}/${s.hashPart}.narinfo`)).text();
      floor.push(performance.now() - t);
    }
    rows.push({
      name: 'cold decision, 3 logs on loopback (200 paths, sequential)',
      value: `p50 ${formatTime(percentile(cold, 50) * 1000)}, p99 ${formatTime(percentile(cold, 99) * 1000)}`,
      baseline: `p50 ${formatTime(percentile(floor, 50) * 1000)} (3 raw lookups + 1 nginx narinfo, unverified)`,
      ratio: (percentile(floor, 50) / percentile(cold, 50)).toFixed(2),
      note: 'target p50 ≤ 10 ms',
    });

    // Warm narinfo answers: the same path again and again.
    const warmPath = `${small[0]?.hashPart ?? ''}.narinfo`;
    const ours = wrk(`${proxy.url}/${warmPath}`, seconds);
    const theirs = wrk(`${nginx.url}/${warmPath}`, seconds);
    rows.push({
      name: 'warm narinfo answers (wrk, 32 connections)',
      value: `${Math.round(ours.perSecond)}/s, p99 ${ours.p99.toFixed(2)} ms`,
      baseline: `${Math.round(theirs.perSecond)}/s, p99 ${theirs.p99.toFixed(2)} ms (nginx, same file)`,
      ratio: (ours.perSecond / theirs.perSecond).toFixed(2),
      note: 'target ≥ 0.5× and ≥ 5,000/s',
    });

    // The 512 MB NAR: through the proxy's disk tier (downloaded, verified whole, then sent;
    // then from the disk cache), streamed (no disk tier), and straight from nginx. curl (C,
    // little CPU) downloads, so the client does not compete with the servers.
    const download = (url: string) => {
      const out = execFileSync(
        'curl',
        ['-sS', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', url],
        {
          encoding: 'utf8',
        },
      );
      const [bytes = 0, time = Infinity] = out.trim().split(' ').map(Number);
      if (bytes !== big.claim.narSize) throw new Error(`${url}: ${bytes} bytes`);
      return bytes / MB / time;
    };
    const best = (url: string) => Math.max(download(url), download(url), download(url));
    const narUrlOf = async (via: Running) => {
      const info = await (await fetch(`${via.url}/${big.hashPart}.narinfo`)).text();
      return `${via.url}/${/URL: (\S+)/.exec(info)?.[1] ?? ''}`;
    };
    // The physical floor: the proxy must hash every byte, once, in one stream.
    const hashStart = performance.now();
    const hash = createHash('sha256');
    for (let i = 0; i < 512; i++) hash.update(block);
    hash.digest();
    const sha256 = bigSize / MB / ((performance.now() - hashStart) / 1000);
    const direct = best(`${nginx.url}/nar/${big.hashPart}.nar`);
    const diskNar = await narUrlOf(proxy);
    const verifiedFirst = download(diskNar);
    const fromDisk = best(diskNar);
    const streaming = await startProxy(env, 'stream', 'nar-disk-cache-mib = 0\n');
    stops.push(streaming);
    const streamed = best(await narUrlOf(streaming));
    // What any Node process relaying the same bytes reaches here: passing them through, and
    // passing them through with SHA-256 on the way.
    const relays = [];
    for (const hash of [false, true]) {
      const relay = await startNodeRelay(`${nginx.url}/nar/${big.hashPart}.nar`, hash);
      stops.push(relay);
      relays.push(best(relay.url));
    }
    const [piped = NaN, pipedHashed = NaN] = relays;
    rows.push(
      {
        name: 'the same 512 MB through a bare Node relay (pipe; pipe + SHA-256)',
        value: `${piped.toFixed(0)} MB/s; ${pipedHashed.toFixed(0)} MB/s`,
        baseline: `${direct.toFixed(0)} MB/s (nginx, same file)`,
        ratio: (pipedHashed / direct).toFixed(2),
        note: `the proxy streams at ${(streamed / pipedHashed).toFixed(2)}× pipe + SHA-256`,
      },
      {
        name: 'NAR streaming, 512 MB, hash verified (no disk tier)',
        value: `${streamed.toFixed(0)} MB/s`,
        baseline: `${sha256.toFixed(0)} MB/s (SHA-256 of the same bytes, one stream)`,
        ratio: (streamed / sha256).toFixed(2),
        note: 'goal ≥ 0.7× (nginx, same file: ' + `${direct.toFixed(0)} MB/s)`,
      },
      {
        name: 'NAR verified whole on disk, then sent, 512 MB (first request)',
        value: `${verifiedFirst.toFixed(0)} MB/s`,
        baseline: `${sha256.toFixed(0)} MB/s (SHA-256 of the same bytes, one stream)`,
        ratio: (verifiedFirst / sha256).toFixed(2),
        note: 'download, hash, write, fsync, then send',
      },
      {
        name: 'NAR from the disk cache, 512 MB',
        value: `${fromDisk.toFixed(0)} MB/s`,
        baseline: `${direct.toFixed(0)} MB/s (nginx, same file)`,
        ratio: (fromDisk / direct).toFixed(2),
        note: 'a site’s second machine',
      },
    );
    if (withNix) rows.push(...(await benchNixClosure(env, stops)));
  } finally {
    for (const s of stops.reverse()) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** nix-store -r of a 200-path closure through the proxy against directly from the cache. */
async function benchNixClosure(env: Env, stops: Running[]): Promise<Row[]> {
  const nixEnv = {
    ...process.env,
    NIX_CONFIG:
      'experimental-features = nix-command\nsandbox = false\nbuild-users-group =\nsubstituters =\n',
  };
  const nix = (cmd: string, args: string[]) =>
    execFileSync(cmd, args, { env: nixEnv, encoding: 'utf8', maxBuffer: 1 << 26 });
  const tag = Date.now().toString(36);
  /** Builds a closure: a top path referring to 199 leaves; returns the top and every path. */
  const buildClosure = (name: string) => {
    const leaves = Array.from(
      { length: 199 },
      (_, i) =>
        `l${i} = derivation { name = "${name}-leaf-${i}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "/bin/mkdir $out; echo ${name} leaf ${i} ${tag} > $out/data" ]; };`,
    );
    const refs = Array.from({ length: 199 }, (_, i) => `\${l${i}}`).join(' ');
    const expr = `let\n${leaves.join('\n')}\nin derivation { name = "${name}-top"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "/bin/mkdir $out; echo ${refs} > $out/refs" ]; }\n`;
    writeFileSync(join(env.dir, `${name}.nix`), expr);
    const top = nix('nix-build', ['--no-out-link', join(env.dir, `${name}.nix`)]).trim();
    return { top, paths: nix('nix-store', ['--query', '--requisites', top]).trim().split('\n') };
  };
  const measured = buildClosure('closure');
  // Substituted through the "running" proxy before the measured closure.
  const previous = buildClosure('previous');
  const closure = measured.paths;
  // The cache: signed narinfos (compression none) next to the synthetic ones.
  const cacheKey = generateNixSecretKey('bench-cache-1');
  writeFileSync(join(env.dir, 'cache.sk'), formatNixSecretKey(cacheKey));
  for (const c of [measured, previous]) {
    nix('nix', ['store', 'sign', '--key-file', join(env.dir, 'cache.sk'), '-r', c.top]);
    nix('nix', ['copy', '--to', `file://${join(env.dir, 'cache')}?compression=none`, c.top]);
  }
  for (const [i, log] of env.logs.entries()) {
    writeFileSync(join(env.dir, `token${i}`), env.tokens[i] ?? '');
    execFileSync(process.execPath, [
      new URL('../../bin/accord.js', import.meta.url).pathname,
      'submit',
      '--quiet',
      '--log',
      log.url,
      '--token-file',
      join(env.dir, `token${i}`),
      '--spool',
      join(env.dir, `spool${i}.db`),
      ...closure,
      ...previous.paths,
    ]);
  }
  // Two ways to run Nix: with its defaults and a fresh narinfo cache per run (what a user
  // sees the first time), and with its narinfo cache disabled (Nix then asks for each narinfo
  // about five times, so per-request costs weigh more).
  const modes = {
    default: (fresh: string) => ({ env: { ...nixEnv, XDG_CACHE_HOME: fresh }, options: [] }),
    'narinfo cache off': (fresh: string) => ({
      env: { ...nixEnv, XDG_CACHE_HOME: fresh },
      options: [
        '--option',
        'narinfo-cache-negative-ttl',
        '0',
        '--option',
        'narinfo-cache-positive-ttl',
        '0',
      ],
    }),
  };
  let runs = 0;
  const realise = (
    mode: keyof typeof modes,
    substituter: string,
    key: string,
    which: { top: string; paths: string[] } = measured,
    extra: readonly string[] = [],
  ) => {
    nix('nix-store', ['--delete', ...[...which.paths].reverse()]);
    const { env: runEnv, options } = modes[mode](join(env.dir, `xdg-${runs++}`));
    const t = performance.now();
    execFileSync(
      'nix-store',
      [
        '--realise',
        which.top,
        '--option',
        'substituters',
        substituter,
        '--option',
        'trusted-public-keys',
        key,
        ...options,
        ...extra,
      ],
      { env: runEnv, stdio: 'ignore' },
    );
    return (performance.now() - t) / 1000;
  };
  await new Promise((r) => setTimeout(r, 500)); // logs publish the claims
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[1] ?? NaN;
  const rows: Row[] = [];
  for (const mode of Object.keys(modes) as (keyof typeof modes)[]) {
    const direct: number[] = [];
    const proxied: number[] = [];
    const running: number[] = [];
    const warm: number[] = [];
    for (let run = 0; run < 3; run++) {
      direct.push(realise(mode, env.cache, formatNixPublicKey(cacheKey)));
      const proxy = await startProxy(env, `nix-${mode}-${run}`); // fresh: every decision cold
      stops.push(proxy);
      proxied.push(realise(mode, proxy.url, env.proxyKey));
      // The same proxy again: decisions and verified NARs are kept.
      warm.push(realise(mode, proxy.url, env.proxyKey));
      if (process.env.ACCORD_BENCH_LOGS !== undefined) {
        writeFileSync(
          join(process.env.ACCORD_BENCH_LOGS, `proxy-metrics-${mode}-${run}.txt`),
          await (await fetch(`${proxy.url}/metrics`)).text(),
        );
      }
      await proxy.stop();
      // A proxy that has been running (it substituted another 200-path closure) but never saw
      // this one.
      const other = await startProxy(env, `nix-${mode}-${run}-running`);
      stops.push(other);
      realise(mode, other.url, env.proxyKey, previous);
      running.push(realise(mode, other.url, env.proxyKey));
      await other.stop();
    }
    rows.push(
      {
        name: `nix-store -r of a ${closure.length}-path closure, Nix ${mode} (median of 3)`,
        value: `${median(proxied).toFixed(2)} s through the proxy (cold)`,
        baseline: `${median(direct).toFixed(2)} s directly from the cache (nginx)`,
        ratio: (median(proxied) / median(direct)).toFixed(2),
        note: 'time ratio; target ≤ 1.25',
      },
      {
        name: `the same, a running proxy (after another 200-path closure) that has not seen it, Nix ${mode} (median of 3)`,
        value: `${median(running).toFixed(2)} s through the proxy (cold paths)`,
        baseline: `${median(direct).toFixed(2)} s directly from the cache (nginx)`,
        ratio: (median(running) / median(direct)).toFixed(2),
        note: 'time ratio; target ≤ 1.25',
      },
      {
        name: `the same, proxy already asked, Nix ${mode} (median of 3)`,
        value: `${median(warm).toFixed(2)} s through the proxy (warm)`,
        baseline: `${median(direct).toFixed(2)} s directly from the cache (nginx)`,
        ratio: (median(warm) / median(direct)).toFixed(2),
        note: 'time ratio; target ≤ 1.25',
      },
    );
  }
  // The caches and logs 20 ms away (10 ms each way), the proxy beside Nix; the same nginx, behind
  // the same relay, for the direct runs. Nix's defaults, cold, at max-jobs 1 and 16.
  const relays = await Promise.all(
    [env.cache, ...env.logs.map((l) => l.url)].map((u) => startRelay(u, 10)),
  );
  stops.push(...relays);
  const [farCache, ...farLogs] = relays.map((r) => r.url);
  let farPolicy = env.policy;
  for (const [i, log] of env.logs.entries())
    farPolicy = farPolicy.split(log.url).join(farLogs[i] ?? '');
  writeFileSync(join(env.dir, 'policy-far'), farPolicy);
  for (const jobs of [1, 16]) {
    const direct: number[] = [];
    const proxied: number[] = [];
    const options = ['--option', 'max-jobs', String(jobs)];
    for (let run = 0; run < 3; run++) {
      direct.push(
        realise('default', farCache ?? '', formatNixPublicKey(cacheKey), measured, options),
      );
      const proxy = await startProxy(env, `far-${jobs}-${run}`, '', {
        policy: 'policy-far',
        cache: farCache ?? '',
      });
      stops.push(proxy);
      proxied.push(realise('default', proxy.url, env.proxyKey, measured, options));
      await proxy.stop();
    }
    rows.push({
      name: `nix-store -r of a ${closure.length}-path closure, caches and logs 20 ms away, max-jobs ${jobs} (median of 3)`,
      value: `${median(proxied).toFixed(2)} s through the proxy beside Nix (cold)`,
      baseline: `${median(direct).toFixed(2)} s directly from the cache 20 ms away`,
      ratio: (median(proxied) / median(direct)).toFixed(2),
      note: 'time ratio; goal ≤ 1.25',
    });
  }
  return rows;
}

/**
 * serve-zstd: a verified NAR from the disk cache as `.nar.zst` (compressed by the proxy's zstd
 * processes as it is sent), against `zstd -3` of the same file alone, in the same run. The NAR
 * is 128 MiB of random letters from a 16-letter alphabet: about 2:1, with no long matches, so
 * zstd works at a steady rate.
 */
export async function benchProxyZstd(): Promise<Row[]> {
  if (!have('nginx', ['-v']) || !have('zstd', ['-V']) || !have('curl')) {
    process.stdout.write('(nginx, zstd or curl missing: skipping the serve-zstd benchmark)\n');
    return [];
  }
  const { dir, cacheDir, env, stops } = await setUp();
  try {
    const blocks = 128;
    const letters = () => {
      const b = randomBytes(1 << 20);
      for (let i = 0; i < b.length; i++) b[i] = 0x61 + ((b[i] ?? 0) & 15);
      return b;
    };
    const nar = addToCache(
      cacheDir,
      'letters',
      function* () {
        for (let i = 0; i < blocks; i++) yield letters();
      },
      blocks << 20,
    );
    await submitAll(env, [nar.claim]);
    const file = join(cacheDir, 'nar', `${nar.hashPart}.nar`);
    const size = nar.claim.narSize;
    // zstd alone: the same file, the same level, stdin to /dev/null.
    const zstdAlone = () => {
      const start = performance.now();
      execFileSync('sh', ['-c', `zstd -3 -q -c < '${file}' > /dev/null`]);
      return size / MB / ((performance.now() - start) / 1000);
    };
    const alone = Math.max(zstdAlone(), zstdAlone(), zstdAlone());
    const proxy = await startProxy(env, 'zstd', 'serve-zstd = true\n');
    stops.push(proxy);
    const info = await fetch(`${proxy.url}/${nar.hashPart}.narinfo`);
    if (info.status !== 200) throw new Error(`proxy refused the NAR: ${await info.text()}`);
    await info.text();
    const url = `${proxy.url}/nar/${nar.hashPart}-${nar.claim.narHash.slice(7)}.nar.zst`;
    // The first request verifies it into the disk cache; check that the frame is the NAR.
    const frame = join(dir, 'frame.zst');
    execFileSync('curl', ['-sSf', '-o', frame, url]);
    const digest = createHash('sha256')
      .update(execFileSync('zstd', ['-q', '-d', '-c', frame], { maxBuffer: 1 << 30 }))
      .digest();
    if (`sha256:${encodeNix32(digest)}` !== nar.claim.narHash)
      throw new Error('the .nar.zst does not decompress to the NAR');
    const sent = () => {
      const out = execFileSync(
        'curl',
        ['-sSf', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', url],
        { encoding: 'utf8' },
      );
      const [bytes = 0, time = Infinity] = out.trim().split(' ').map(Number);
      return { bytes, rate: size / MB / time };
    };
    const runs = [sent(), sent(), sent()];
    const best = Math.max(...runs.map((r) => r.rate));
    return [
      {
        name: 'NAR from the disk cache as .nar.zst (serve-zstd, level 3), 128 MiB of 16-letter text',
        value: `${best.toFixed(0)} MB/s of NAR (${((runs[0]?.bytes ?? 0) / MB).toFixed(0)} MB sent)`,
        baseline: `${alone.toFixed(0)} MB/s (zstd -3 of the same file alone)`,
        ratio: (best / alone).toFixed(2),
        note: 'goal near 1×: zstd is the work; the proxy reads the file and relays',
      },
    ];
  } finally {
    for (const s of stops.reverse()) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
