import { connect } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { formatEntry, claimFromJson } from '../../src/claim/index.js';
import {
  hashLeaf,
  parseTlogPolicy,
  parseTlogProof,
  verifyTlogProof,
} from '../../src/tlog/index.js';
import { makeClaim } from '../support/claims.js';
import { HAVE_GO, verifyWithGo } from '../support/go-client.js';
import { type TestLog, startTestLog } from '../support/log.js';
import { IN_CI } from '../support/requirements.js';
import { readAndVerifyLog } from '../support/tiles-client.js';

describe('accord log serve over HTTP', () => {
  let log: TestLog;
  beforeAll(async () => {
    log = await startTestLog({ revoked: 'revoked-token-0123456789abcdef' });
  });
  afterAll(async () => {
    await log.close();
  });

  test('600 claims read back through a from-scratch tlog-tiles client and Go’s reference', async () => {
    const claims = Array.from({ length: 600 }, (_, i) => makeClaim(i, 0, 'tiles'));
    for (let i = 0; i < 600; i += 100) {
      const res = await log.submit(claims.slice(i, i + 100));
      expect(res.status).toBe(200);
      const { indexes } = (await res.json()) as { indexes: number[] };
      expect(indexes).toEqual(Array.from({ length: 100 }, (_, k) => i + k));
    }
    await log.waitForSize(600);
    const read = await readAndVerifyLog(log.url, log.vkey);
    expect(read.treeSize).toBe(600);
    expect(read.entries.map((e) => e.toString())).toEqual(
      claims.map((c) => formatEntry(claimFromJson(c))),
    );
    if (HAVE_GO || IN_CI) expect(await verifyWithGo(log.url, log.vkey)).toBe('ok 600');
  });

  test('re-submission is idempotent; a different claim for a path is appended, and lookup proves both', async () => {
    const first = makeClaim(7, 0, 'lookup');
    const other = makeClaim(7, 1, 'lookup');
    const a = (await (await log.submit([first])).json()) as { indexes: number[] };
    const again = (await (await log.submit([first])).json()) as { indexes: number[] };
    expect(again.indexes).toEqual(a.indexes);
    const b = (await (await log.submit([other, first])).json()) as { indexes: number[] };
    expect(b.indexes[1]).toBe(a.indexes[0]);
    expect(b.indexes[0]).toBeGreaterThan(a.indexes[0] ?? Infinity);
    await log.waitForSize((b.indexes[0] ?? 0) + 1);
    const hashPart = first.storePath.slice('/nix/store/'.length, '/nix/store/'.length + 32);
    const res = await fetch(`${log.url}/lookup/${hashPart}`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      entries: { index: number; entry: string; proof: string }[];
    };
    expect(body.entries.map((e) => e.index)).toEqual([a.indexes[0], b.indexes[0]]);
    const policy = parseTlogPolicy(`log ${log.vkey}\nquorum none\n`);
    for (const e of body.entries) {
      const verified = verifyTlogProof(
        parseTlogProof(e.proof),
        hashLeaf(Buffer.from(e.entry)),
        policy,
      );
      expect(verified.index).toBe(e.index);
    }
    const forged = (body.entries[0]?.entry ?? '').replace('nar-size', 'nar-size 1');
    const proof = parseTlogProof(body.entries[0]?.proof ?? '');
    expect(() => verifyTlogProof(proof, hashLeaf(Buffer.from(forged)), policy)).toThrow();
  });

  test('POST /lookup answers many paths against one checkpoint, each proof verifying', async () => {
    const claims = [makeClaim(11, 0, 'batch'), makeClaim(12, 0, 'batch')];
    const { indexes } = (await (await log.submit(claims)).json()) as { indexes: number[] };
    await log.waitForSize(Math.max(...indexes) + 1);
    const hashOf = (c: (typeof claims)[number]) => c.storePath.slice(11, 43);
    const absent = '0'.repeat(32);
    const [c0, c1] = claims as [(typeof claims)[number], (typeof claims)[number]];
    const ask = [hashOf(c0), absent, hashOf(c1)];
    const res = await fetch(`${log.url}/lookup`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ hashParts: [...ask, ask[0]] }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      checkpoint: string;
      paths: Record<string, { index: number; entry: string; proof: string }[]>;
    };
    expect(Object.keys(body.paths).sort()).toEqual([...ask].sort());
    expect(body.paths[absent]).toEqual([]);
    const policy = parseTlogPolicy(`log ${log.vkey}\nquorum none\n`);
    for (const [i, c] of claims.entries()) {
      const [e] = body.paths[hashOf(c)] ?? [];
      expect(e?.index).toBe(indexes[i]);
      expect(e?.entry).toBe(formatEntry(claimFromJson(c)));
      const proof = parseTlogProof(e?.proof ?? '');
      expect(proof.checkpoint).toBe(body.checkpoint);
      expect(verifyTlogProof(proof, hashLeaf(Buffer.from(e?.entry ?? '')), policy).index).toBe(
        indexes[i],
      );
    }
  });

  test('the read path sets C2SP content types and cache lifetimes, and gzips bundles on request', async () => {
    await log.waitForSize(1);
    const cp = await fetch(`${log.url}/checkpoint`);
    expect(cp.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(cp.headers.get('cache-control')).toBe('public, max-age=1');
    const tile = await fetch(`${log.url}/tile/0/000`);
    expect(tile.status).toBe(200);
    expect(tile.headers.get('content-type')).toBe('application/octet-stream');
    expect(tile.headers.get('cache-control')).toContain('immutable');
    expect((await tile.arrayBuffer()).byteLength).toBe(8192);
    const gz = await fetch(`${log.url}/tile/entries/000`, {
      headers: { 'Accept-Encoding': 'gzip' },
    });
    expect(gz.headers.get('content-encoding')).toBe('gzip');
    const plain = await fetch(`${log.url}/tile/entries/000`, {
      headers: { 'Accept-Encoding': 'identity' },
    });
    expect(plain.headers.get('content-encoding')).toBeNull();
    const bundle = Buffer.from(await plain.arrayBuffer());
    expect(Buffer.from(await gz.arrayBuffer())).toEqual(bundle);
    // A full bundle's gzip encoding is stored after its first request, and served from then on.
    let stored: Uint8Array | undefined;
    for (let i = 0; i < 100 && stored === undefined; i++) {
      stored = await log.service.storage.compressedBundle(0);
      if (stored === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    expect(gunzipSync(stored ?? Buffer.alloc(0))).toEqual(bundle);
    const again = await fetch(`${log.url}/tile/entries/000`, {
      headers: { 'Accept-Encoding': 'gzip' },
    });
    expect(again.headers.get('content-encoding')).toBe('gzip');
    expect(Buffer.from(await again.arrayBuffer())).toEqual(bundle);
    // The partial bundle at the end is never stored.
    const size = (await log.service.storage.state()).treeSize;
    expect(size % 256).not.toBe(0);
    const last = Math.floor(size / 256);
    const partial = await fetch(
      `${log.url}/tile/entries/${String(last).padStart(3, '0')}.p/${size % 256}`,
      { headers: { 'Accept-Encoding': 'gzip' } },
    );
    expect(partial.status).toBe(200);
    expect(await log.service.storage.compressedBundle(last)).toBeUndefined();
    const head = await fetch(`${log.url}/tile/0/000`, { method: 'HEAD' });
    expect(head.headers.get('content-length')).toBe('8192');
    const metrics = await (await fetch(`${log.url}/metrics`)).text();
    expect(metrics).toContain('accord_log_entries_submitted_total{submitter="builder"}');
  });
});

/** Sends raw bytes over TCP and returns the status line of the answer. */
function rawRequest(url: string, request: string, holdMs = 0): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(request);
      if (holdMs > 0) setTimeout(() => socket.write('{'), holdMs);
    });
    let data = '';
    socket.on('data', (d) => (data += d.toString()));
    socket.on('close', () => resolve(data.split('\r\n')[0] ?? ''));
    socket.on('error', reject);
    socket.setTimeout(20_000, () => socket.destroy());
  });
}

describe('accord log serve refuses bad input, writing nothing', () => {
  let log: TestLog;
  const REVOKED = 'revoked-token-0123456789abcdef';
  beforeAll(async () => {
    log = await startTestLog({ revoked: REVOKED });
  });
  afterAll(async () => {
    await log.close();
  });

  const good = makeClaim(1, 0, 'bad-input');
  const postLookup = (body: string) =>
    fetch(`${log.url}/lookup`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body,
    });
  const post = (body: string, headers: Record<string, string> = {}) =>
    fetch(`${log.url}/submit`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${log.token}`,
        'Content-Type': 'application/json',
        ...headers,
      },
      body,
    });

  test.each([
    [
      'no token',
      () => post(JSON.stringify({ claims: [good] }), { Authorization: '' }),
      401,
      /token/,
    ],
    [
      'an unknown token',
      () =>
        post(JSON.stringify({ claims: [good] }), {
          Authorization: 'Bearer nope-nope-nope-nope-nope',
        }),
      401,
      /unknown token/,
    ],
    [
      'a revoked submitter',
      () => post(JSON.stringify({ claims: [good] }), { Authorization: `Bearer ${REVOKED}` }),
      403,
      /revoked/,
    ],
    ['a body that is not JSON', () => post('{"claims": ['), 400, /not valid JSON/],
    ['no claims array', () => post(JSON.stringify({ claim: good })), 400, /claims/],
    ['an empty claims array', () => post(JSON.stringify({ claims: [] })), 400, /at least one/],
    [
      'a claim with a bad hash',
      () => post(JSON.stringify({ claims: [good, { ...good, narHash: 'sha256:zzz' }] })),
      400,
      /claim 1/,
    ],
    [
      'a store path in another store',
      () =>
        post(
          JSON.stringify({
            claims: [{ ...good, storePath: good.storePath.replace('/nix/', '/gnu/') }],
          }),
        ),
      400,
      /claim 0.*store/,
    ],
    [
      'a store path with a bad name',
      () => post(JSON.stringify({ claims: [{ ...good, storePath: `${good.storePath}/bin` }] })),
      400,
      /claim 0/,
    ],
    [
      'an unknown field',
      () => post(JSON.stringify({ claims: [{ ...good, extra: 1 }] })),
      400,
      /unknown key/,
    ],
    [
      'a wrong content type',
      () => post(JSON.stringify({ claims: [good] }), { 'Content-Type': 'text/plain' }),
      415,
      /json/,
    ],
    [
      'an oversized body',
      () => post(JSON.stringify({ claims: [good], pad: 'x'.repeat(2 << 20) })),
      413,
      /larger than/,
    ],
    [
      'too many claims',
      () => post(JSON.stringify({ claims: Array.from({ length: 1001 }, () => good) })),
      413,
      /claims/,
    ],
    ['GET on /submit', () => fetch(`${log.url}/submit`), 405, /POST/],
    ['a tile path with ..', () => fetch(`${log.url}/tile/0/../../etc/passwd`), 404, /./],
    ['an encoded traversal', () => fetch(`${log.url}/tile/0/%2e%2e/000`), 404, /./],
    [
      'a non-canonical tile path',
      () => fetch(`${log.url}/tile/0/x000/000`),
      404,
      /leading zero|not a tile/,
    ],
    ['a tile that does not exist', () => fetch(`${log.url}/tile/3/000`), 404, /no tile/],
    ['a bad lookup', () => fetch(`${log.url}/lookup/not-a-hash`), 400, /hash part/],
    ['a batch lookup that is not JSON', () => postLookup('{"hashParts": ['), 400, /not valid JSON/],
    ['a batch lookup without hashParts', () => postLookup('{"paths": []}'), 400, /hashParts/],
    ['an empty batch lookup', () => postLookup('{"hashParts": []}'), 400, /at least one/],
    [
      'a batch lookup with a bad hash part',
      () => postLookup('{"hashParts": ["../x"]}'),
      400,
      /hashParts\[0\]/,
    ],
    [
      'a batch lookup of 1,001 paths',
      () =>
        postLookup(
          JSON.stringify({ hashParts: Array.from({ length: 1001 }, () => '0'.repeat(32)) }),
        ),
      413,
      /more than 1000/,
    ],
    [
      'an oversized batch lookup',
      () => postLookup(JSON.stringify({ hashParts: ['0'.repeat(32)], pad: 'x'.repeat(70_000) })),
      413,
      /larger than/,
    ],
  ])('%s', async (_, request, status, message) => {
    const before = await log.service.storage.state();
    const res = await request();
    expect(res.status).toBe(status);
    expect(await res.text()).toMatch(message);
    expect(await log.service.storage.state()).toEqual(before);
  });

  test('a slow-loris body is cut off with 408 and nothing is written', async () => {
    const before = await log.service.storage.state();
    const line = await rawRequest(
      log.url,
      `POST /submit HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${log.token}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"claims":',
      500,
    );
    expect(line).toBe('HTTP/1.1 408 Request Timeout');
    expect(await log.service.storage.state()).toEqual(before);
  }, 30_000);
});
