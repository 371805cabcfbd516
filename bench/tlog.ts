/** Benchmarks of src/tlog against raw node:crypto rates measured in the same run. */
import { createHash, generateKeyPairSync, sign, verify } from 'node:crypto';
import { createRequire } from 'node:module';
import {
  SIG_TYPE_COSIGNATURE_V1,
  SIG_TYPE_ED25519,
  appendLeaves,
  EMPTY_EDGE,
  formatCheckpoint,
  formatVerifierKey,
  hashChildren,
  hashLeaf,
  newSigner,
  openCheckpoint,
  parseVerifierKey,
  proveInclusion,
  signNote,
  tileHashReader,
  tilePath,
  verifyInclusion,
  type Tile,
} from '../src/tlog/index.js';
import { type Row, formatRate, formatTime, measure } from './harness.js';

const ENTRY = Buffer.alloc(200, 'a'); // about the size of an accord/build/v1 entry

/** Builds a tiled tree of `size` leaves in memory and returns a tile-backed hash reader. */
function buildTree(size: number) {
  const tiles = new Map<string, Uint8Array>();
  const leaves: Uint8Array[] = [];
  for (let i = 0; i < size; i++) leaves.push(hashLeaf(Buffer.from(`entry ${i}`)));
  const { rootHash, tiles: written } = appendLeaves(EMPTY_EDGE, leaves);
  for (const { tile, data } of written) tiles.set(tilePath(tile), data);
  const reader = tileHashReader(size, {
    readTiles: (ts: readonly Tile[]) =>
      Promise.resolve(ts.map((t) => tiles.get(tilePath(t)) ?? new Uint8Array())),
  });
  return { rootHash, reader, leaves };
}

export async function benchTlog(seconds: number): Promise<Row[]> {
  const rows: Row[] = [];

  // Leaf hashing beside one raw SHA-256 of the same 201 bytes.
  const raw = measure(() => createHash('sha256').update(ENTRY).digest(), seconds);
  const leaf = measure(() => hashLeaf(ENTRY), seconds);
  rows.push({
    name: 'leaf hash (200-byte entry)',
    value: formatRate(leaf.perSecond, 'hash'),
    baseline: `${formatRate(raw.perSecond, 'hash')} (node:crypto SHA-256)`,
    ratio: (leaf.perSecond / raw.perSecond).toFixed(2),
  });

  // Inclusion proof verification in a tree of 2^20 leaves: 20 node hashes per proof.
  const size = 1 << 20;
  const { rootHash, reader, leaves } = buildTree(size);
  const index = 123_457;
  const proof = await proveInclusion(index, size, reader);
  const leafHash = leaves[index] as Uint8Array;
  const left = Buffer.alloc(32, 1);
  const node = measure(() => hashChildren(left, left), seconds);
  const verifyRate = measure(() => {
    verifyInclusion(leafHash, index, size, proof, rootHash);
  }, seconds);
  rows.push({
    name: `inclusion proof verify (tree 2^20, ${proof.length} hashes)`,
    value: formatRate(verifyRate.perSecond, 'proof'),
    baseline: `${formatRate(node.perSecond / proof.length, 'proof')} (${proof.length} raw node hashes)`,
    ratio: (verifyRate.perSecond / (node.perSecond / proof.length)).toFixed(2),
  });

  // One checkpoint: log signature + 3 cosignatures + an inclusion proof, from text.
  const log = newSigner('bench.example/log', SIG_TYPE_ED25519, Buffer.alloc(32, 1));
  const witnesses = [2, 3, 4].map((i) =>
    newSigner(`bench.example/w${i}`, SIG_TYPE_COSIGNATURE_V1, Buffer.alloc(32, i)),
  );
  const text = formatCheckpoint({
    origin: 'bench.example/log',
    treeSize: size,
    rootHash,
    extensions: [],
  });
  const note = signNote(text, [log, ...witnesses]);
  const logKey = parseVerifierKey(formatVerifierKey(log));
  const witnessKeys = witnesses.map((w) => parseVerifierKey(formatVerifierKey(w)));
  const full = measure(() => {
    const { checkpoint } = openCheckpoint(note, [logKey], witnessKeys);
    verifyInclusion(leafHash, index, checkpoint.treeSize, proof, checkpoint.rootHash);
  }, seconds);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const message = Buffer.from(text);
  const signature = sign(null, message, privateKey);
  const ed = measure(() => verify(null, message, publicKey, signature), seconds);
  const sodium = createRequire(import.meta.url)('sodium-native') as {
    crypto_sign_verify_detached(s: Uint8Array, m: Uint8Array, k: Uint8Array): boolean;
  };
  const rawKey = publicKey.export({ format: 'der', type: 'spki' }).subarray(12);
  const lib = measure(
    () => sodium.crypto_sign_verify_detached(signature, message, rawKey),
    seconds,
  );
  rows.push({
    name: 'checkpoint + 3 cosignatures + inclusion proof',
    value: formatTime(full.microseconds),
    baseline: `${formatTime(4 * ed.microseconds)} (4 raw Ed25519 verifies, node:crypto; libsodium: ${formatTime(4 * lib.microseconds)})`,
    ratio: ((4 * ed.microseconds) / full.microseconds).toFixed(2),
    note: 'time per check; target ≤ 0.5 ms',
  });
  return rows;
}
