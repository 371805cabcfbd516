import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { formatEntry, claimFromJson, parseLookup } from '../../src/claim/index.js';
import { foldStatements, signStatement, type KeyStatement } from '../../src/identity/index.js';
import {
  hashLeaf,
  parseTlogPolicy,
  parseTlogProof,
  verifyTlogProof,
} from '../../src/tlog/index.js';
import { makeClaim } from '../support/claims.js';
import { Chain, logKey, nixKey, rootSigner, verifierOf } from '../support/identity.js';
import { type TestLog, startTestLog } from '../support/log.js';
import { readAndVerifyLog } from '../support/tiles-client.js';

const root = rootSigner('builder1.example.org');
const NOW = 1_780_000_000;
const DAY = 86_400;

describe('accord log serve: key statements', () => {
  let log: TestLog;
  let plain: TestLog;
  const chain = new Chain(root);
  beforeAll(async () => {
    log = await startTestLog({ identity: { root: verifierOf(root), now: () => NOW } });
    plain = await startTestLog();
  });
  afterAll(async () => {
    await log.close();
    await plain.close();
  });

  const text = async (res: Response) => `${res.status} ${await res.text()}`;

  test('a chain is taken in order and looked up under accord-keys with proofs; claims are untouched', async () => {
    const s0 = chain.next({
      issued: NOW - DAY,
      keys: [{ kind: 'log', key: logKey(1), from: NOW - 100 * DAY }],
      revocations: [],
    });
    const r0 = await log.submitStatement(s0);
    expect(await r0.json()).toEqual({ index: 0 });
    expect((await log.submit([makeClaim(1, 0, 'stmt')])).status).toBe(200);
    const s1 = chain.next({
      issued: NOW,
      keys: [
        { kind: 'log', key: logKey(1), from: NOW - 100 * DAY, until: NOW + 7 * DAY },
        { kind: 'log', key: logKey(2), from: NOW },
        { kind: 'nix', key: nixKey(1), from: NOW },
      ],
      revocations: [],
    });
    const r1 = await log.submitStatement(s1);
    expect(await r1.json()).toEqual({ index: 2 });
    // The same statement again: the same index, nothing appended.
    expect(await (await log.submitStatement(s0)).json()).toEqual({ index: 0 });
    expect(await (await log.submitStatement(s1)).json()).toEqual({ index: 2 });
    await log.waitForSize(3);
    const res = await fetch(`${log.url}/lookup/accord-keys`);
    expect(res.status).toBe(200);
    const answer = parseLookup(new Uint8Array(await res.arrayBuffer()), 'accord-keys');
    expect(answer.entries.map((e) => e.index)).toEqual([0, 2]);
    expect(answer.entries.map((e) => e.entry)).toEqual([s0, s1]);
    const raw = (await (await fetch(`${log.url}/lookup/accord-keys`)).json()) as {
      entries: object[];
    };
    expect(raw.entries.every((e) => !('claim' in e))).toBe(true);
    const policy = parseTlogPolicy(`log ${log.vkey}\nquorum none\n`);
    for (const e of answer.entries) {
      const proof = parseTlogProof(e.proof ?? '');
      expect(verifyTlogProof(proof, hashLeaf(Buffer.from(e.entry)), policy).index).toBe(e.index);
    }
    const folded = foldStatements(
      verifierOf(root),
      answer.entries.map((e) => e.entry),
    );
    expect(folded.kind).toBe('ok');
    expect(folded.state?.sequence).toBe(1);
    // The whole log still reads and verifies as tiles, statements and claims alike.
    const read = await readAndVerifyLog(log.url, log.vkey);
    expect(read.entries.map((e) => e.toString())).toEqual([
      s0,
      formatEntry(claimFromJson(makeClaim(1, 0, 'stmt'))),
      s1,
    ]);
  });

  test('refuses what is not the next statement: forged 400, out of chain 409, nothing appended', async () => {
    const before = (await log.service.storage.state()).nextIndex;
    const last = chain.notes[chain.notes.length - 1] ?? '';
    const statement = (change: Partial<KeyStatement>): KeyStatement => ({
      identity: root.name,
      sequence: 2,
      previous: chain.head() as string,
      issued: NOW + 1,
      keys: [{ kind: 'log', key: logKey(2), from: NOW }],
      revocations: [],
      ...change,
    });
    const forged = signStatement(statement({}), rootSigner('builder1.example.org', 'thief'));
    expect(await text(await log.submitStatement(forged))).toMatch(
      /^400 .*not signed by the root key/,
    );
    expect(await text(await log.submitStatement('hello\n'))).toMatch(/^400 /);
    const gap = signStatement(statement({ sequence: 3 }), root);
    expect(await text(await log.submitStatement(gap))).toMatch(/^409 .*statement 2 is missing/);
    const other1 = signStatement(
      statement({ sequence: 1, previous: chain.head() as string }),
      root,
    );
    expect(await text(await log.submitStatement(other1))).toMatch(
      /^409 .*differs from statement 1/,
    );
    const retro = signStatement(
      statement({ keys: [{ kind: 'log', key: logKey(3), from: NOW }] }),
      root,
    );
    expect(await text(await log.submitStatement(retro))).toMatch(/^409 .*before it was issued/);
    const future = signStatement(statement({ issued: NOW + 3600 }), root);
    expect(await text(await log.submitStatement(future))).toMatch(/^400 .*in the future/);
    expect((await log.service.storage.state()).nextIndex).toBe(before);
    expect(last).toContain('sequence 1');
  });

  test('of two different next statements sent at once, exactly one is taken', async () => {
    const make = (i: number) =>
      signStatement(
        {
          identity: root.name,
          sequence: 2,
          previous: chain.head() as string,
          issued: NOW + 10 + i,
          keys: [{ kind: 'log', key: logKey(2), from: NOW }],
          revocations: [],
        },
        root,
      );
    const answers = await Promise.all([0, 1, 2, 3].map((i) => log.submitStatement(make(i))));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 409, 409, 409]);
    const res = await fetch(`${log.url}/lookup/accord-keys`);
    const answer = parseLookup(new Uint8Array(await res.arrayBuffer()), 'accord-keys');
    expect(answer.entries).toHaveLength(3);
    expect(
      foldStatements(
        verifierOf(root),
        answer.entries.map((e) => e.entry),
      ).kind,
    ).toBe('ok');
  });

  test('authentication, content type and routes: 401, 415, 405; a log without an identity 404', async () => {
    const s = chain.notes[0] ?? '';
    expect((await log.submitStatement(s, 'wrong-token-0123456789abcdef0123')).status).toBe(401);
    const json = await fetch(`${log.url}/statements`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${log.token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ statement: s }),
    });
    expect(json.status).toBe(415);
    expect((await fetch(`${log.url}/statements`)).status).toBe(405);
    expect((await plain.submitStatement(s)).status).toBe(404);
    expect(await (await fetch(`${plain.url}/lookup/accord-keys`)).json()).toMatchObject({
      entries: [],
    });
    expect((await fetch(`${log.url}/lookup/accord-key`)).status).toBe(400);
  });
});
