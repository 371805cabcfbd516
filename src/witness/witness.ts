/**
 * The C2SP tlog-witness add-checkpoint decision, through the trust kernel: a checkpoint is
 * cosigned only when it is the same as, or a consistent extension of, the last one cosigned for
 * its log. The new checkpoint is stored (compare-and-set) before the cosignature is returned.
 */
import {
  EMPTY_ROOT,
  type NoteSigner,
  type NoteVerifier,
  TlogError,
  type VerifiedCheckpoint,
  completeConsistencyProof,
  formatForkEvidence,
  formatSignatureLine,
  openNote,
  parseAddCheckpoint,
  parseCheckpoint,
  parseSignedNote,
  relateCheckpoints,
} from '../tlog/index.js';
import { WitnessError } from './errors.js';
import type { WitnessStorage } from './storage.js';

export interface Witness {
  /** The witness's cosignature/v1 signer. */
  readonly signer: NoteSigner;
  /** Logs witnessed: origin → the keys trusted for it. */
  readonly logs: ReadonlyMap<string, readonly NoteVerifier[]>;
  readonly storage: WitnessStorage;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * Handles one add-checkpoint request body (tlog-witness §add-checkpoint) and returns the
 * cosignature line; throws a {@link WitnessError} saying why it is refused.
 */
export async function addCheckpoint(witness: Witness, body: string): Promise<string> {
  let request;
  let origin: string;
  try {
    request = parseAddCheckpoint(body);
    const note = parseSignedNote(request.checkpoint);
    origin = note.text.slice(0, note.text.indexOf('\n'));
  } catch (e) {
    throw new WitnessError('malformed', message(e));
  }
  const keys = witness.logs.get(origin);
  if (keys === undefined) throw new WitnessError('unknown-log', `unknown log origin ${origin}`);
  let opened;
  let checkpoint;
  try {
    opened = openNote(request.checkpoint, keys);
    checkpoint = parseCheckpoint(opened.text);
  } catch (e) {
    const code = e instanceof TlogError && e.code === 'malformed' ? 'malformed' : 'untrusted';
    throw new WitnessError(code, message(e));
  }
  const { oldSize, consistencyProof } = request;
  if (oldSize > checkpoint.treeSize) {
    throw new WitnessError('malformed', `old size ${oldSize} is larger than the checkpoint`);
  }
  const stored = await witness.storage.latest(origin);
  const storedSize = stored?.size ?? 0;
  if (oldSize !== storedSize) {
    throw new WitnessError('stale', `the last checkpoint cosigned has size ${storedSize}`, {
      size: storedSize,
    });
  }
  const last: VerifiedCheckpoint =
    stored === undefined
      ? { treeSize: 0, rootHash: EMPTY_ROOT, note: '' }
      : { treeSize: stored.size, rootHash: stored.rootHash, note: stored.note };
  const next: VerifiedCheckpoint = {
    treeSize: checkpoint.treeSize,
    rootHash: checkpoint.rootHash,
    note: request.checkpoint,
  };
  // The request carries RFC 6962's proof: completed with the witness's own root, it can show
  // bad data but a fork only where the proof itself holds the old tree's hash.
  const proof =
    oldSize === 0 || oldSize === checkpoint.treeSize
      ? consistencyProof
      : completeConsistencyProof(oldSize, consistencyProof, last.rootHash);
  const relation = relateCheckpoints(last, next, proof);
  if (relation.kind === 'fork') {
    throw new WitnessError('inconsistent', `the log forked: ${relation.reason}`, {
      evidence: formatForkEvidence(relation.evidence),
    });
  }
  if (relation.kind === 'bad-data') throw new WitnessError('inconsistent', relation.reason);
  if (relation.kind === 'older') throw new Error('bug: an older checkpoint passed the size check');

  const noteText = request.checkpoint.slice(0, request.checkpoint.lastIndexOf('\n\n') + 1);
  const signature = witness.signer.sign(Buffer.from(noteText));
  const line = formatSignatureLine({
    name: witness.signer.name,
    keyId: witness.signer.keyId,
    signature,
  });
  // Keep the log's own signatures (those the witness verified) and add the cosignature.
  const logLines = opened.verified.map((v) => formatSignatureLine(v.signature)).join('');
  const note = `${noteText}\n${logLines}${line}`;
  const advanced = await witness.storage.advance(origin, oldSize, {
    size: checkpoint.treeSize,
    rootHash: checkpoint.rootHash,
    note,
  });
  if (!advanced.ok) {
    throw new WitnessError('stale', `the last checkpoint cosigned has size ${advanced.size}`, {
      size: advanced.size,
    });
  }
  return line;
}
