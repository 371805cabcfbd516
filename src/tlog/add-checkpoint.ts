/**
 * C2SP tlog-witness `add-checkpoint` request bodies: `old <size>`, up to 63 consistency proof
 * lines, a blank line, then the checkpoint note.
 */
import { TlogError } from './errors.js';
import { checkIndex, decodeBase64, encodeBase64, parseDecimal } from './encoding.js';
import { HASH_SIZE } from './hash.js';

/** A parsed add-checkpoint request. */
export interface AddCheckpointRequest {
  readonly oldSize: number;
  readonly consistencyProof: readonly Uint8Array[];
  /** The signed checkpoint note, verbatim. */
  readonly checkpoint: string;
}

/** The most consistency proof lines a request may carry (tlog-witness §add-checkpoint). */
export const MAX_CONSISTENCY_LINES = 63;

/** Formats a request body. */
export function formatAddCheckpoint(req: AddCheckpointRequest): string {
  checkIndex(req.oldSize, 'old size');
  if (req.consistencyProof.length > MAX_CONSISTENCY_LINES) {
    throw new TlogError('limit', 'more than 63 consistency proof lines');
  }
  const proof = req.consistencyProof.map((h) => `${encodeBase64(h)}\n`).join('');
  return `old ${req.oldSize}\n${proof}\n${req.checkpoint}`;
}

/**
 * Parses a request body (attacker-controlled): `old` in canonical decimal, at most 63 base64
 * hashes of 32 bytes, a blank line, and the rest as the checkpoint note (checked by the
 * caller). Every line ends in a newline. Throws `malformed` (a 400).
 */
export function parseAddCheckpoint(body: string): AddCheckpointRequest {
  const lines = body.split('\n');
  const first = lines[0] ?? '';
  if (!first.startsWith('old ')) throw new TlogError('malformed', 'first line is not "old <size>"');
  const oldSize = parseDecimal(first.slice(4), 'old size');
  const consistencyProof: Uint8Array[] = [];
  let i = 1;
  for (; i < lines.length && lines[i] !== ''; i++) {
    if (consistencyProof.length === MAX_CONSISTENCY_LINES) {
      throw new TlogError('malformed', 'more than 63 consistency proof lines');
    }
    const hash = decodeBase64(lines[i] ?? '', 'consistency proof line');
    if (hash.length !== HASH_SIZE)
      throw new TlogError('malformed', 'consistency proof hash is not 32 bytes');
    consistencyProof.push(hash);
  }
  if (i >= lines.length) throw new TlogError('malformed', 'no blank line before the checkpoint');
  const checkpoint = lines.slice(i + 1).join('\n');
  if (checkpoint === '') throw new TlogError('malformed', 'no checkpoint');
  return { oldSize, consistencyProof, checkpoint };
}
