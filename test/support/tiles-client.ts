/**
 * Test support: a tlog-tiles client written from the C2SP specs (signed-note, tlog-checkpoint,
 * tlog-tiles) and RFC 6962 alone, with node:crypto — it shares no code with src/, so the log
 * server is checked by something that did not grow up with it. It downloads a whole log and
 * verifies everything: the checkpoint signature, every entry bundle, every tile, the root.
 */
import { createHash, createPublicKey, verify } from 'node:crypto';

const sha256 = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** `x001/x234/067` for 1234067. */
function tileIndexPath(n: number): string {
  let s = String(n);
  while (s.length % 3 !== 0) s = `0${s}`;
  const parts = s.match(/.{3}/g) ?? [];
  return parts.map((p, i) => (i < parts.length - 1 ? `x${p}` : p)).join('/');
}

function tilePathFor(level: number | 'entries', n: number, width: number): string {
  return `tile/${level}/${tileIndexPath(n)}${width === 256 ? '' : `.p/${width}`}`;
}

/** RFC 6962 MTH over leaf hashes (or any level's hashes treated as leaves of a subtree). */
function mth(hashes: readonly Buffer[]): Buffer {
  if (hashes.length === 0) return sha256();
  if (hashes.length === 1) return hashes[0] as Buffer;
  let k = 1;
  while (k * 2 < hashes.length) k *= 2;
  return sha256(Buffer.from([1]), mth(hashes.slice(0, k)), mth(hashes.slice(k)));
}

/** What the client read and checked. */
export interface VerifiedLog {
  readonly origin: string;
  readonly treeSize: number;
  readonly rootHash: Buffer;
  readonly entries: Buffer[];
  readonly checkpoint: string;
}

async function get(base: string, path: string): Promise<Buffer> {
  const res = await fetch(`${base}/${path}`, { headers: { 'Accept-Encoding': 'gzip, identity' } });
  if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

/** Opens a checkpoint note with an Ed25519 vkey, by the signed-note spec; returns its text. */
export function openCheckpointIndependently(note: string, vkey: string): string {
  const name = vkey.slice(0, vkey.indexOf('+'));
  const idHex = vkey.split('+')[1] ?? '';
  const b64 = vkey.split('+').slice(2).join('+');
  const material = Buffer.from(b64, 'base64');
  if (material[0] !== 0x01 || material.length !== 33) throw new Error('not an Ed25519 vkey');
  const pub = material.subarray(1);
  const keyId = sha256(Buffer.from(`${name}\n`), Buffer.from([1]), pub).subarray(0, 4);
  if (keyId.toString('hex') !== idHex) throw new Error('vkey key ID does not match');
  const split = note.lastIndexOf('\n\n');
  const text = note.slice(0, split + 1);
  const key = createPublicKey({
    key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), pub]),
    format: 'der',
    type: 'spki',
  });
  let good = 0;
  for (const line of note
    .slice(split + 2)
    .split('\n')
    .filter((l) => l !== '')) {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (m === null) throw new Error(`bad signature line ${line}`);
    const sig = Buffer.from(m[2] ?? '', 'base64');
    if (m[1] !== name || !sig.subarray(0, 4).equals(keyId)) continue;
    if (!verify(null, Buffer.from(text), key, sig.subarray(4)))
      throw new Error('bad log signature');
    good++;
  }
  if (good === 0) throw new Error('checkpoint not signed by the log key');
  return text;
}

/** Downloads the log at `base` and verifies all of it against `vkey`. */
export async function readAndVerifyLog(base: string, vkey: string): Promise<VerifiedLog> {
  const checkpoint = (await get(base, 'checkpoint')).toString('utf8');
  const text = openCheckpointIndependently(checkpoint, vkey);
  const [origin = '', sizeText = '', rootText = ''] = text.split('\n');
  const treeSize = Number(sizeText);
  const rootHash = Buffer.from(rootText, 'base64');
  if (origin !== vkey.slice(0, vkey.indexOf('+'))) throw new Error('origin is not the key name');

  // Entry bundles: uint16 big-endian length-prefixed entries.
  const entries: Buffer[] = [];
  for (let n = 0; n * 256 < treeSize; n++) {
    const width = Math.min(256, treeSize - n * 256);
    const bundle = await get(base, tilePathFor('entries', n, width));
    let at = 0;
    let count = 0;
    while (at < bundle.length) {
      const length = bundle.readUInt16BE(at);
      entries.push(bundle.subarray(at + 2, at + 2 + length));
      at += 2 + length;
      count++;
    }
    if (at !== bundle.length || count !== width) throw new Error(`bad entry bundle ${n}`);
  }
  const leaves = entries.map((e) => sha256(Buffer.from([0]), e));
  if (!mth(leaves).equals(rootHash)) throw new Error('entries do not hash to the checkpoint root');

  // Tiles: level 0 holds the leaf hashes; each hash of level L+1 is the MTH of a full tile of L.
  let level = 0;
  let hashes: Buffer[] = leaves;
  while (hashes.length > 0) {
    const next: Buffer[] = [];
    for (let n = 0; n * 256 < hashes.length; n++) {
      const width = Math.min(256, hashes.length - n * 256);
      const tile = await get(base, tilePathFor(level, n, width));
      const expected = Buffer.concat(hashes.slice(n * 256, n * 256 + width));
      if (!tile.equals(expected)) throw new Error(`tile ${level}/${n} does not match the entries`);
      if (width === 256) next.push(mth(hashes.slice(n * 256, n * 256 + 256)));
    }
    hashes = next;
    level++;
  }
  return { origin, treeSize, rootHash, entries, checkpoint };
}
