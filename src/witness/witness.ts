/**
 * The C2SP tlog-witness add-checkpoint decision: which status a request gets, and the
 * cosignature when it succeeds. The new checkpoint is stored (compare-and-set) before the
 * cosignature is returned.
 */
import {
  EMPTY_ROOT,
  type NoteSigner,
  type NoteVerifier,
  TlogError,
  equalBytes,
  formatSignatureLine,
  openNote,
  parseAddCheckpoint,
  parseCheckpoint,
  parseSignedNote,
  verifyConsistency,
} from '../tlog/index.js';
import type { WitnessStorage } from './storage.js';

/** The answer to an add-checkpoint request. */
export type AddCheckpointResult =
  | { readonly status: 200; readonly body: string }
  | {
      readonly status: 400 | 403 | 404 | 409 | 422;
      readonly body: string;
      readonly type?: string;
    };

export interface Witness {
  /** The witness's cosignature/v1 signer. */
  readonly signer: NoteSigner;
  /** Logs witnessed: origin → the keys trusted for it. */
  readonly logs: ReadonlyMap<string, readonly NoteVerifier[]>;
  readonly storage: WitnessStorage;
}

/** Handles one add-checkpoint request body (tlog-witness §add-checkpoint). */
export async function addCheckpoint(witness: Witness, body: string): Promise<AddCheckpointResult> {
  let request;
  let origin: string;
  try {
    request = parseAddCheckpoint(body);
    const note = parseSignedNote(request.checkpoint);
    origin = note.text.slice(0, note.text.indexOf('\n'));
  } catch (e) {
    return { status: 400, body: `${e instanceof Error ? e.message : String(e)}\n` };
  }
  const keys = witness.logs.get(origin);
  if (keys === undefined) return { status: 404, body: `unknown log origin ${origin}\n` };
  let checkpoint;
  try {
    const opened = openNote(request.checkpoint, keys);
    checkpoint = parseCheckpoint(opened.text);
  } catch (e) {
    const status = e instanceof TlogError && e.code === 'malformed' ? 400 : 403;
    return { status, body: `${e instanceof Error ? e.message : String(e)}\n` };
  }
  const { oldSize, consistencyProof } = request;
  if (oldSize > checkpoint.treeSize) {
    return { status: 400, body: `old size ${oldSize} is larger than the checkpoint\n` };
  }
  const stored = await witness.storage.latest(origin);
  const storedSize = stored?.size ?? 0;
  const conflict = (size: number): AddCheckpointResult => ({
    status: 409,
    body: `${size}\n`,
    type: 'text/x.tlog.size',
  });
  if (oldSize !== storedSize) return conflict(storedSize);
  if (checkpoint.treeSize === 0 && !equalBytes(checkpoint.rootHash, EMPTY_ROOT)) {
    return { status: 422, body: 'a checkpoint of size 0 must have the empty root\n' };
  }
  if (oldSize === 0) {
    if (consistencyProof.length !== 0)
      return { status: 422, body: 'proof from size 0 must be empty\n' };
  } else if (oldSize === checkpoint.treeSize) {
    if (!equalBytes(checkpoint.rootHash, stored?.rootHash ?? new Uint8Array())) {
      return { status: 422, body: `root hash differs from the one cosigned for size ${oldSize}\n` };
    }
  } else {
    try {
      verifyConsistency(
        oldSize,
        checkpoint.treeSize,
        consistencyProof,
        stored?.rootHash ?? new Uint8Array(),
        checkpoint.rootHash,
      );
    } catch (e) {
      return { status: 422, body: `${e instanceof Error ? e.message : String(e)}\n` };
    }
  }
  const noteText = request.checkpoint.slice(0, request.checkpoint.lastIndexOf('\n\n') + 1);
  const signature = witness.signer.sign(Buffer.from(noteText));
  const line = formatSignatureLine({
    name: witness.signer.name,
    keyId: witness.signer.keyId,
    signature,
  });
  // Keep the log's own signatures (those the witness verified) and add the cosignature.
  const verified = openNote(request.checkpoint, keys);
  const logLines = verified.verified.map((v) => formatSignatureLine(v.signature)).join('');
  const note = `${noteText}\n${logLines}${line}`;
  const advanced = await witness.storage.advance(origin, oldSize, {
    size: checkpoint.treeSize,
    rootHash: checkpoint.rootHash,
    note,
  });
  if (!advanced.ok) return conflict(advanced.size);
  return { status: 200, body: line };
}
