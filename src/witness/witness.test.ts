import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { MemoryTree, testEntry } from '../../test/support/memory-tree.js';
import {
  EMPTY_ROOT,
  SIG_TYPE_COSIGNATURE_V1,
  SIG_TYPE_ED25519,
  cosignatureTimestamp,
  formatAddCheckpoint,
  formatCheckpoint,
  formatVerifierKey,
  newSigner,
  openNote,
  parseAddCheckpoint,
  parseVerifierKey,
  proveConsistency,
  signNote,
  treeHash,
  verifyForkEvidence,
} from '../tlog/index.js';
import { WitnessError } from './errors.js';
import { KERNEL_CASES, KernelWorld } from '../../test/support/kernel-cases.js';
import { witnessErrors } from './server.js';
import { openSqliteWitnessStorage } from './sqlite-storage.js';
import { type Witness, addCheckpoint } from './witness.js';

/** The answer a request gets: the cosignature line, or the error as the server maps it. */
async function answer(
  w: Witness,
  body: string,
): Promise<{ status: number; body: string; type?: string }> {
  try {
    return { status: 200, body: await addCheckpoint(w, body) };
  } catch (error) {
    const http = witnessErrors(error);
    if (http === undefined) throw error;
    return { status: http.status, body: `${http.message}\n`, type: http.type };
  }
}

// The request body example of c2sp.org/tlog-witness §add-checkpoint.
const SPEC_REQUEST = `old 20852014
PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=
jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=
5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=
/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=

example.com/behind-the-sofa
20852163
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=
— example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=
`;

const ORIGIN = 'witnessed.example/log';
const log = newSigner(ORIGIN, SIG_TYPE_ED25519, new Uint8Array(32).fill(3));
const logKey = parseVerifierKey(formatVerifierKey(log));
const cosigner = newSigner(
  'w.example/witness',
  SIG_TYPE_COSIGNATURE_V1,
  new Uint8Array(32).fill(4),
  {
    now: () => 1_800_000_000,
  },
);
const cosignerKey = parseVerifierKey(formatVerifierKey(cosigner));

const tree = new MemoryTree();
for (let i = 0; i < 40; i++) tree.appendEntry(testEntry(i));
const note = async (size: number, signer = log) =>
  signNote(
    formatCheckpoint({
      origin: ORIGIN,
      treeSize: size,
      rootHash: size === 0 ? EMPTY_ROOT : await treeHash(size, tree),
      extensions: [],
    }),
    [signer],
  );
const request = async (
  oldSize: number,
  size: number,
  options: { signer?: typeof log; proof?: Uint8Array[] } = {},
) =>
  formatAddCheckpoint({
    oldSize,
    consistencyProof:
      options.proof ??
      (oldSize === 0 || oldSize === size ? [] : await proveConsistency(oldSize, size, tree)),
    checkpoint: await note(size, options.signer),
  });

function freshWitness(): Witness {
  return {
    signer: cosigner,
    logs: new Map([[ORIGIN, [logKey]]]),
    storage: openSqliteWitnessStorage(':memory:'),
  };
}

describe('tlog-witness add-checkpoint', () => {
  test('parses the spec example request: old size, 4 proof lines, the checkpoint', () => {
    const r = parseAddCheckpoint(SPEC_REQUEST);
    expect(r.oldSize).toBe(20852014);
    expect(r.consistencyProof).toHaveLength(4);
    expect(r.checkpoint.startsWith('example.com/behind-the-sofa\n20852163\n')).toBe(true);
    expect(formatAddCheckpoint(r)).toBe(SPEC_REQUEST);
  });

  test('the spec example is 404 to a witness that does not know its origin', async () => {
    expect((await answer(freshWitness(), SPEC_REQUEST)).status).toBe(404);
  });

  test('the spec example is 403 when its origin is known under another key', async () => {
    const w = freshWitness();
    const other = parseVerifierKey(
      formatVerifierKey(
        newSigner('example.com/behind-the-sofa', SIG_TYPE_ED25519, new Uint8Array(32).fill(9)),
      ),
    );
    const known: Witness = { ...w, logs: new Map([['example.com/behind-the-sofa', [other]]]) };
    expect((await answer(known, SPEC_REQUEST)).status).toBe(403);
  });

  test('200: cosigns from size 0, returns a cosignature/v1 line, persists, then extends', async () => {
    const w = freshWitness();
    const first = await answer(w, await request(0, 10));
    expect(first.status).toBe(200);
    expect(first.body).toMatch(/^— w\.example\/witness \S+\n$/);
    // The line is a valid cosignature of the checkpoint, with the witness's timestamp.
    const cp = await note(10);
    const opened = openNote(`${cp}${first.body}`, [logKey, cosignerKey]);
    const cosig = opened.verified.find((v) => v.verifier === cosignerKey);
    expect(cosignatureTimestamp(cosig?.signature.signature ?? new Uint8Array())).toBe(
      1_800_000_000,
    );
    expect((await w.storage.latest(ORIGIN))?.size).toBe(10);
    expect((await answer(w, await request(10, 25))).status).toBe(200);
    expect((await answer(w, await request(25, 25))).status).toBe(200);
    const stored = await w.storage.latest(ORIGIN);
    expect(stored?.size).toBe(25);
    expect(stored?.note).toContain('— w.example/witness ');
    expect(stored?.note).toContain(`— ${ORIGIN} `);
  });

  test('409 with text/x.tlog.size when the old size is not the last cosigned one', async () => {
    const w = freshWitness();
    await answer(w, await request(0, 10));
    const r = await answer(w, await request(5, 20));
    expect(r).toMatchObject({ status: 409, body: '10\n', type: 'text/x.tlog.size' });
    expect(await answer(w, await request(0, 20))).toMatchObject({
      status: 409,
      body: '10\n',
    });
  });

  test.each([
    ['400: a malformed body', () => Promise.resolve('old x\n\ncheckpoint'), 400],
    [
      '400: old size larger than the checkpoint',
      async () => request(0, 10).then((r) => r.replace('old 0', 'old 11')),
      400,
    ],
    [
      '403: no signature by a trusted key',
      async () =>
        request(0, 10, { signer: newSigner(ORIGIN, SIG_TYPE_ED25519, new Uint8Array(32).fill(8)) }),
      403,
    ],
    [
      '403: a bad signature by the trusted key',
      async () =>
        (await request(0, 10)).replace(
          /(— witnessed\.example\/log \S{10})(\S)/,
          (_, a: string, c: string) => a + (c === 'A' ? 'B' : 'A'),
        ),
      403,
    ],
    [
      '422: size 0 with another root',
      () =>
        formatAddCheckpoint({
          oldSize: 0,
          consistencyProof: [],
          checkpoint: signNote(
            formatCheckpoint({
              origin: ORIGIN,
              treeSize: 0,
              rootHash: new Uint8Array(32).fill(1),
              extensions: [],
            }),
            [log],
          ),
        }),
      422,
    ],
    [
      '422: a proof from size 0',
      async () => request(0, 10, { proof: [createHash('sha256').digest()] }),
      422,
    ],
  ])('%s', async (_, make, status) => {
    expect((await answer(freshWitness(), await make())).status).toBe(status);
  });

  test('422: an inconsistent extension, and a different root for the same size', async () => {
    const w = freshWitness();
    await answer(w, await request(0, 10));
    const bad = await request(10, 20, { proof: await proveConsistency(9, 20, tree) });
    expect((await answer(w, bad)).status).toBe(422);
    const forked = formatAddCheckpoint({
      oldSize: 10,
      consistencyProof: [],
      checkpoint: signNote(
        formatCheckpoint({
          origin: ORIGIN,
          treeSize: 10,
          rootHash: new Uint8Array(32).fill(7),
          extensions: [],
        }),
        [log],
      ),
    });
    expect((await answer(w, forked)).status).toBe(422);
    expect((await w.storage.latest(ORIGIN))?.size).toBe(10);
  });
});

describe('the witness runs the trust kernel table', () => {
  const world = new KernelWorld(log);
  const witnessFor = () => ({ ...freshWitness(), logs: new Map([[log.name, [logKey]]]) });
  // What the witness answers for each relation: it cosigns the same or an extension; a fork or
  // bad data is 422. A smaller checkpoint cannot have the stored old size: 409 whatever it is.
  const STATUS = { same: 200, extends: 200, older: 409, fork: 422, 'bad-data': 422 } as const;

  test.each(KERNEL_CASES)('$name: $expect', async (c) => {
    const w = witnessFor();
    const last = await world.checkpoint(...c.last);
    const next = await world.checkpoint(...c.next);
    const first = await answer(
      w,
      formatAddCheckpoint({ oldSize: 0, consistencyProof: [], checkpoint: last.note }),
    );
    expect(first.status).toBe(200);
    const proof = next.treeSize > last.treeSize ? await world.proof(c, false) : [];
    const r = await answer(
      w,
      formatAddCheckpoint({
        oldSize: Math.min(last.treeSize, next.treeSize),
        consistencyProof: proof,
        checkpoint: next.note,
      }),
    );
    expect(r.status).toBe(next.treeSize < last.treeSize ? 409 : STATUS[c.expect]);
    // It never moves off a checkpoint it cannot show to be extended.
    expect((await w.storage.latest(log.name))?.size).toBe(
      r.status === 200 ? next.treeSize : last.treeSize,
    );
  });

  test('a fork shown to the witness comes with evidence that verifies', async () => {
    for (const [last, next] of [
      [5, 9],
      [9, 9],
    ] as const) {
      const w = witnessFor();
      const honest = await world.checkpoint('honest', last);
      const forked = await world.checkpoint('forked', next);
      await answer(
        w,
        formatAddCheckpoint({ oldSize: 0, consistencyProof: [], checkpoint: honest.note }),
      );
      const proof = last === next ? [] : await proveConsistency(last, next, world.tree('forked'));
      const refused = addCheckpoint(
        w,
        formatAddCheckpoint({ oldSize: last, consistencyProof: proof, checkpoint: forked.note }),
      );
      await expect(refused).rejects.toThrow(WitnessError);
      const error = (await refused.catch((e: unknown) => e)) as WitnessError;
      expect(error.code).toBe('inconsistent');
      expect(verifyForkEvidence(error.details.evidence ?? '', [logKey]).origin).toBe(log.name);
    }
  });
});
