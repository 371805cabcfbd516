/**
 * serve-zstd: a client on another machine gets narinfos saying `Compression: zstd` and the
 * verified NAR as one zstd frame (compressed by zstd processes the proxy's helper starts, or in
 * raw blocks when all are busy); a client on the proxy's machine gets the plain NAR. The proxy
 * is bound to every address, and "another machine" is this machine's own non-loopback address
 * (eth0's, say): a connection to it comes from it, so the proxy sees a non-loopback client.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, type ServerResponse, createServer, get } from 'node:http';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { pathInfoClaims } from '../../src/host/index.js';
import {
  decompress,
  encodeNix32,
  formatHash,
  formatNixPublicKey,
  parseNarInfo,
  parseNixPublicKey,
  verifiedSigners,
} from '../../src/nix/index.js';
import {
  ConfigError,
  type ProxyService,
  loadProxyConfig,
  startProxy,
} from '../../src/proxy/index.js';
import { close, listen, silentLogger } from '../../src/server/index.js';
import { claimWithNar } from '../support/claims.js';
import { runAccord } from '../support/cli.js';
import { type TestLog, startTestLog } from '../support/log.js';
import { build, nix, shDerivation, substituteFrom } from '../support/nix.js';
import { narinfoFor, writeProxyFiles } from '../support/proxy-world.js';
import { HAVE_NIX, requireAvailable, shouldRun } from '../support/requirements.js';

/** A non-loopback IPv4 address of this machine: connecting to it, the client is not loopback. */
function otherAddress(): string {
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  throw new Error('these tests need a non-loopback IPv4 address on this machine (none found)');
}

/** A path whose NAR holds `bytes` of base64 noise (compresses to about 3/4) or of text. */
const pathOf = (i: number, bytes: number, noise: boolean) =>
  claimWithNar(
    i,
    'zstd',
    noise
      ? randomBytes(Math.ceil((bytes * 3) / 4))
          .toString('base64')
          .slice(0, bytes)
      : `path ${i}\n${'a NAR of text '.repeat(Math.ceil(bytes / 14))}`,
  );
type Path = ReturnType<typeof pathOf>;

const sha256 = (b: Uint8Array) => `sha256:${encodeNix32(createHash('sha256').update(b).digest())}`;

function unzstd(frame: Uint8Array): Buffer {
  const r = spawnSync('zstd', ['-q', '-d', '-c'], { input: frame, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`zstd -d failed: ${String(r.stderr)}`);
  return r.stdout;
}

async function decodeOurs(frame: Uint8Array, narSize: number): Promise<Buffer> {
  const out: Uint8Array[] = [];
  for await (const c of decompress('zstd', [frame], { maxOutput: narSize })) out.push(c);
  return Buffer.concat(out);
}

/** A binary cache of `paths`, serving `serve(nar)` as each NAR. */
async function cache(paths: readonly Path[], serve: (nar: Buffer) => Buffer) {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const name = (req.url ?? '').slice(1);
    for (const p of paths) {
      if (name === `${p.hashPart}.narinfo`) return void res.writeHead(200).end(narinfoFor(p));
      if (name === `nar/${p.hashPart}.nar`) return void res.writeHead(200).end(serve(p.nar));
    }
    res.writeHead(404).end();
  });
  const url = await listen(server, '127.0.0.1', 0);
  return { url, close: () => close(server, 100) };
}

/** One character of the file's contents changed: still a well-formed archive. */
function otherContents(nar: Buffer): Buffer {
  const changed = Buffer.from(nar);
  changed[changed.indexOf('path ')] = 'P'.charCodeAt(0);
  return changed;
}

/** The processes whose parent is `pid` (zombies included: they are children until reaped). */
function childrenOf(pid: number): number[] {
  const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
  return text === '' ? [] : text.split(' ').map(Number);
}

/** Waits until `check()` holds (at most `ms`), then says whether it does. */
async function eventually(check: () => boolean, ms = 10_000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(20)) if (check()) return true;
  return check();
}

describe('serve-zstd', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accord-zstd-'));
  // Held whole in memory (≤ 64 KiB), through the disk tier, and streamed (over
  // verify-before-send-mib = 2); the noise NARs are too large to fit in the sockets' buffers.
  const paths = [
    pathOf(0, 20_000, false),
    pathOf(1, 300_000, true),
    pathOf(2, 3_000_000, false),
    pathOf(3, 24_000_000, true),
  ];
  const [small, mid, streamed, huge] = paths as [Path, Path, Path, Path];
  let logs: TestLog[];
  let honest: Awaited<ReturnType<typeof cache>>;
  let liar: Awaited<ReturnType<typeof cache>>;
  let proxy: ProxyService;
  let key = '';
  let remote = ''; // the proxy as another machine reaches it
  let local = ''; // the proxy on loopback
  const writeConfig = (extra: string) =>
    writeFileSync(
      join(dir, 'proxy.toml'),
      `signing-key = "proxy.sk"\npolicy = "policy"\nstate = "proxy.db"\nnar-cache-mib = 0\n` +
        `prefetch-nars = false\nnar-disk-cache = "nars"\nverify-before-send-mib = 2\n${extra}` +
        `[[upstream]]\nurl = "${liar.url}"\npriority = 10\n[[upstream]]\nurl = "${honest.url}"\npriority = 20\n`,
    );
  const start = async () => {
    proxy = await startProxy(loadProxyConfig(join(dir, 'proxy.toml')), silentLogger, '0.0.0.0:0');
    const port = new URL(proxy.url).port;
    remote = `http://${otherAddress()}:${port}`;
    local = `http://127.0.0.1:${port}`;
  };
  const narinfo = async (base: string, p: Path) => {
    const res = await fetch(`${base}/${p.hashPart}.narinfo`);
    expect(res.status).toBe(200);
    return { text: await res.text(), cacheControl: res.headers.get('cache-control') };
  };
  const get200 = async (url: string) => {
    const res = await fetch(url);
    expect(res.status, url).toBe(200);
    return Buffer.from(await res.arrayBuffer());
  };
  const metric = async (name: string) => {
    const text = await (await fetch(`${local}/metrics`)).text();
    return Number(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
  };

  beforeAll(async () => {
    otherAddress();
    logs = [await startTestLog(), await startTestLog()];
    for (const log of logs) {
      expect((await log.submit(paths.map((p) => p.claim))).status).toBe(200);
      await log.waitForSize(paths.length);
    }
    honest = await cache(paths, (nar) => nar);
    // The preferred cache changes the contents of the small, mid and streamed NARs.
    liar = await cache(paths, (nar) => (nar === huge.nar ? nar : otherContents(nar)));
    key = formatNixPublicKey(writeProxyFiles(dir, 'zstd-proxy-1', logs));
    writeConfig('serve-zstd = true\nzstd-processes = 2\n');
    await start();
  }, 180_000);
  afterAll(async () => {
    await proxy.close();
    await liar.close();
    await honest.close();
    for (const log of logs) await log.close();
  });

  test('a client on another machine gets Compression: zstd, the same signature, and a .nar.zst of the exact NAR', async () => {
    for (const p of [small, mid]) {
      const remoteInfo = await narinfo(remote, p);
      const info = parseNarInfo(remoteInfo.text);
      expect(info.compression).toBe('zstd');
      expect(info.url).toBe(`nar/${p.hashPart}-${p.claim.narHash.slice(7)}.nar.zst`);
      expect([info.fileHash, info.fileSize]).toEqual([undefined, undefined]);
      expect(remoteInfo.cacheControl).toMatch(/^private, max-age=\d+$/);
      // The proxy's signature is valid for the variant too (it covers neither URL nor
      // compression), and is the very one the plain narinfo carries.
      const plain = parseNarInfo((await narinfo(local, p)).text);
      expect(info.sigs).toEqual(plain.sigs);
      expect(verifiedSigners(info, [parseNixPublicKey(key)])).toEqual(['zstd-proxy-1']);
      // Twice: fetched and verified (the liar's NAR caught first), then from the disk tier.
      for (let i = 0; i < 2; i++) {
        const frame = await get200(`${remote}/${info.url}`);
        expect(frame.subarray(0, 4)).toEqual(Buffer.of(0x28, 0xb5, 0x2f, 0xfd));
        for (const nar of [unzstd(frame), await decodeOurs(frame, p.claim.narSize)]) {
          expect(nar.equals(p.nar)).toBe(true);
          expect(sha256(nar)).toBe(formatHash(info.narHash));
        }
        if (p === mid) expect(frame.length).toBeLessThan(p.nar.length);
      }
    }
    expect(await metric('accord_proxy_nar_zstd_total{how="compressed"}')).toBe(4);
  });

  test('a loopback client gets the plain NAR, even while the answer is warm from another machine', async () => {
    for (const p of [small, mid]) {
      for (const [base, compression] of [
        [local, 'none'],
        [remote, 'zstd'],
        [local, 'none'],
      ] as const) {
        const info = parseNarInfo((await narinfo(base, p)).text);
        expect(info.compression, base).toBe(compression);
      }
      const info = parseNarInfo((await narinfo(local, p)).text);
      expect(info.url).toBe(`nar/${p.hashPart}-${p.claim.narHash.slice(7)}.nar`);
      expect([info.fileSize, info.narSize]).toEqual([p.claim.narSize, p.claim.narSize]);
      expect((await get200(`${local}/${info.url}`)).equals(p.nar)).toBe(true);
    }
  });

  test('a streamed NAR that turns out wrong cuts the .nar.zst response; the next request gets the honest one', async () => {
    const url = `${remote}/nar/${streamed.hashPart}-${streamed.claim.narHash.slice(7)}.nar.zst`;
    await narinfo(remote, streamed);
    // Cut: before its headers even left (zstd holds text back) or after some of the frame.
    await expect(fetch(url).then((r) => r.arrayBuffer())).rejects.toThrow();
    const frame = await get200(url);
    expect(unzstd(frame).equals(streamed.nar)).toBe(true);
  });

  test('HEAD of a .nar.zst answers without a compressor; .nar.zst of another NAR hash is a 404', async () => {
    const url = `${remote}/nar/${mid.hashPart}-${mid.claim.narHash.slice(7)}.nar.zst`;
    const head = await fetch(url, { method: 'HEAD' });
    expect([head.status, head.headers.get('content-type')]).toEqual([200, 'application/zstd']);
    const other = await fetch(
      `${remote}/nar/${mid.hashPart}-${small.claim.narHash.slice(7)}.nar.zst`,
    );
    expect(other.status).toBe(404);
  });

  /** Starts a GET of the huge NAR's .nar.zst, reads its first bytes, then stops reading. */
  const stalled = async () => {
    await narinfo(remote, huge);
    const url = `${remote}/nar/${huge.hashPart}-${huge.claim.narHash.slice(7)}.nar.zst`;
    return new Promise<{ res: IncomingMessage; first: Buffer }>((resolve, reject) => {
      get(url, (res) => {
        res.once('data', (first: Buffer) => {
          res.pause();
          resolve({ res, first });
        });
      }).on('error', reject);
    });
  };
  const helperPid = () => proxy.compressors?.helperPid ?? 0;

  test('past zstd-processes compressors, a NAR goes as a raw zstd frame, right away', async () => {
    const a = await stalled();
    const b = await stalled();
    expect(await eventually(() => childrenOf(helperPid()).length === 2)).toBe(true);
    const raw = await metric('accord_proxy_nar_zstd_total{how="raw"}');
    const frame = await get200(
      `${remote}/nar/${mid.hashPart}-${mid.claim.narHash.slice(7)}.nar.zst`,
    );
    expect(await metric('accord_proxy_nar_zstd_total{how="raw"}')).toBe(raw + 1);
    expect(frame[4]).toBe(0xe0); // our raw frame's descriptor: single segment, 8-byte size
    expect(unzstd(frame).equals(mid.nar)).toBe(true);
    expect((await decodeOurs(frame, mid.claim.narSize)).equals(mid.nar)).toBe(true);
    a.res.destroy();
    b.res.destroy();
  });

  test('a client that goes away mid-response leaves no compressor behind, and the proxy serves on', async () => {
    expect(await eventually(() => childrenOf(helperPid()).length === 0)).toBe(true);
    const { res } = await stalled();
    expect(await eventually(() => childrenOf(helperPid()).length === 1)).toBe(true);
    res.destroy();
    // No compressor and no zombie: the helper's children list is empty again.
    expect(await eventually(() => childrenOf(helperPid()).length === 0)).toBe(true);
    expect(await eventually(() => proxy.compressors?.active === 0)).toBe(true);
    expect((await fetch(`${remote}/nix-cache-info`)).status).toBe(200);
  });

  test('a compressor killed mid-response cuts that response, never ends it; nothing is left and the proxy serves on', async () => {
    const { res, first } = await stalled();
    expect(await eventually(() => childrenOf(helperPid()).length === 1)).toBe(true);
    const [zstdPid = 0] = childrenOf(helperPid());
    expect(readFileSync(`/proc/${zstdPid}/cmdline`, 'utf8').split('\0')[0]).toBe('zstd');
    process.kill(zstdPid, 'SIGKILL');
    const parts = [first];
    const ended = await new Promise<'complete' | 'cut'>((resolve) => {
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        resolve(res.complete ? 'complete' : 'cut');
      });
      res.on('error', () => {
        resolve('cut');
      });
      res.on('close', () => {
        resolve(res.complete ? 'complete' : 'cut');
      });
      res.resume();
    });
    expect(ended).toBe('cut');
    expect(() => unzstd(Buffer.concat(parts))).toThrow(/zstd -d failed/);
    expect(await eventually(() => childrenOf(helperPid()).length === 0)).toBe(true);
    expect(await eventually(() => proxy.compressors?.active === 0)).toBe(true);
    // The next request is compressed and whole again.
    const frame = await get200(
      `${remote}/nar/${huge.hashPart}-${huge.claim.narHash.slice(7)}.nar.zst`,
    );
    expect(sha256(unzstd(frame))).toBe(huge.claim.narHash);
  });

  test('a compressor whose output stops short of the frame end, goes on past it, is not zstd, or ends before the NAR went in (exiting 0): the response is cut, never ended', async () => {
    // Stand-in zstds that exit cleanly; all but the last read all their input.
    const stands = {
      short: 'zstd -q -c -3 | head -c 1000; cat > /dev/null',
      trailing: 'zstd -q -c -3; echo bytes after the frame',
      garbage: 'cat > /dev/null; echo not a zstd frame',
    };
    const scripts = Object.entries(stands).map(([name, script]) => {
      const file = join(dir, `${name}-zstd.sh`);
      writeFileSync(file, `#!/bin/sh\n[ "$1" = -V ] && exit 0\n${script}\n`, { mode: 0o755 });
      return [name, file] as const;
    });
    // And one that sends a whole frame (of one byte, "x") and ends its output at once, then
    // reads all its input: the frame is complete before the NAR was all written.
    const early = join(dir, 'early-zstd.js');
    writeFileSync(
      early,
      `#!${process.execPath}\nif (process.argv[2] === '-V') process.exit(0);\n` +
        `const s = new (require('node:net').Socket)({ fd: 0, readable: true, writable: true });\n` +
        `s.end(Buffer.from('28b52ffde0010000000000000008000078010000', 'hex'));\n` +
        `s.on('data', () => {}); s.on('end', () => process.exit(0));\n`,
      { mode: 0o755 },
    );
    for (const [name, file] of [...scripts, ['early', early] as const]) {
      await proxy.close();
      writeConfig(`serve-zstd = true\nzstd-command = "${file}"\n`);
      await start();
      const url = `${remote}/nar/${mid.hashPart}-${mid.claim.narHash.slice(7)}.nar.zst`;
      await narinfo(remote, mid);
      await expect(
        fetch(url).then((r) => r.arrayBuffer()),
        name,
      ).rejects.toThrow();
      expect(await eventually(() => childrenOf(helperPid()).length === 0)).toBe(true);
      expect((await fetch(`${remote}/nix-cache-info`)).status).toBe(200);
    }
  });

  test('a .nar.zst without serve-zstd is a 404, and every narinfo is plain', async () => {
    await proxy.close();
    writeConfig('');
    await start();
    expect(proxy.compressors).toBeUndefined();
    const info = parseNarInfo((await narinfo(remote, mid)).text);
    expect([info.compression, info.url.endsWith('.nar')]).toEqual(['none', true]);
    const res = await fetch(`${remote}/${info.url}.zst`);
    expect(res.status).toBe(404);
  });

  test('a zstd that does not run is a config error at start naming the key, in one line', async () => {
    await proxy.close();
    writeConfig('serve-zstd = true\nzstd-command = "/nonexistent/zstd"\n');
    await expect(
      startProxy(loadProxyConfig(join(dir, 'proxy.toml')), silentLogger, '127.0.0.1:0'),
    ).rejects.toThrow(ConfigError);
    const cli = await runAccord([
      'proxy',
      '--config',
      join(dir, 'proxy.toml'),
      '--listen',
      '127.0.0.1:0',
    ]);
    expect(cli.code).not.toBe(0);
    expect(cli.stderr.trim().split('\n')).toHaveLength(1);
    expect(cli.stderr).toMatch(
      /zstd-command "\/nonexistent\/zstd" does not run .*serve-zstd = false/,
    );
    writeConfig('');
    await start(); // for afterAll
  });
});

const run = `zstd-e2e-${Date.now()}`;

describe.runIf(shouldRun(HAVE_NIX))('serve-zstd with real Nix', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accord-zstd-e2e-'));
  const cacheDir = join(dir, 'cache');
  const logs: TestLog[] = [];
  let proxy: ProxyService;
  let key = '';
  let top = '';
  let closure: string[] = [];

  beforeAll(async () => {
    requireAvailable(HAVE_NIX, 'nix');
    // Two parts: a small one and one of 2 MB of text; top refers to both.
    let expr = '';
    for (const [i, size] of [1_000, 2_000_000].entries()) {
      const script = `/bin/mkdir $out; echo payload ${i} > $out/data; /usr/bin/head -c ${size} /dev/zero | /usr/bin/tr '\\\\0' z > $out/bulk`;
      expr += `part${i} = ${shDerivation(`zpart-${i}`, script, run)};\n`;
    }
    [top = ''] = await build(
      `let\n${expr}in ${shDerivation('ztop', 'echo ${part0} ${part1} > $out', run)}`,
    );
    closure = (await nix('nix-store', ['--query', '--requisites', top])).trim().split('\n');
    expect(closure).toHaveLength(3);
    await nix('nix', ['copy', '--to', `file://${cacheDir}?compression=none`, top]);
    const claims = await pathInfoClaims(closure);
    for (let i = 0; i < 2; i++) {
      const log = await startTestLog({ origin: `zstd${i}.example/log` });
      expect((await log.submit(claims)).status).toBe(200);
      await log.waitForSize(claims.length);
      logs.push(log);
    }
    key = formatNixPublicKey(writeProxyFiles(dir, 'zstd-e2e-proxy-1', logs));
    writeFileSync(
      join(dir, 'proxy.toml'),
      `signing-key = "proxy.sk"\npolicy = "policy"\nstate = "proxy.db"\nnar-disk-cache = "nars"\n` +
        `serve-zstd = true\n[[upstream]]\nurl = "file://${cacheDir}"\n`,
    );
    proxy = await startProxy(loadProxyConfig(join(dir, 'proxy.toml')), silentLogger, '0.0.0.0:0');
  }, 300_000);
  afterAll(async () => {
    await proxy.close();
    for (const log of logs) await log.close();
  });

  test('nix-store -r from another machine substitutes the closure through .nar.zst', async () => {
    const remote = `http://${otherAddress()}:${new URL(proxy.url).port}`;
    const store = join(dir, 'machine');
    await substituteFrom(remote, key, [top], ['--store', store]);
    const part1 = closure.find((p) => p.endsWith('-zpart-1')) ?? '';
    expect(readFileSync(join(store, part1, 'data'), 'utf8')).toBe('payload 1\n');
    expect(readFileSync(join(store, part1, 'bulk')).length).toBe(2_000_000);
    const metrics = await (await fetch(`${remote}/metrics`)).text();
    // Every NAR of the closure went compressed (none as the plain .nar).
    expect(metrics).toMatch(
      new RegExp(`accord_proxy_nar_zstd_total\\{how="compressed"\\} ${closure.length}\\b`),
    );
  });
});
