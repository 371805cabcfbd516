/**
 * Fork evidence as text: two signed checkpoints of one log that cannot both be true, and the
 * consistency proof that shows it — checked offline with nothing but the log's public key.
 *
 *     accord/fork-evidence/v1
 *     <base64 hash>              (the complete consistency proof, none for equal sizes)
 *     <blank line>
 *     <signed checkpoint note, the smaller tree's>
 *     <blank line>
 *     <signed checkpoint note, the larger tree's>
 */
import { decodeBase64, encodeBase64 } from './encoding.js';
import { TlogError } from './errors.js';
import { HASH_SIZE } from './hash.js';
import type { NoteVerifier } from './keys.js';
import { type Checkpoint, openCheckpoint, parseCheckpoint } from './checkpoint.js';
import { parseSignedNote } from './note.js';
import { type ForkEvidence, relateCheckpoints } from './relation.js';

/** The first line of every fork evidence text. */
export const FORK_EVIDENCE_HEADER = 'accord/fork-evidence/v1';

/** Largest checkpoint note in evidence. */
const MAX_NOTE_BYTES = 64 * 1024;
/** A complete consistency proof in a tree of fewer than 2⁶³ leaves has at most 64 hashes. */
const MAX_PROOF_HASHES = 64;
/** Largest evidence text: two notes and the proof lines. */
export const MAX_FORK_EVIDENCE_BYTES = 2 * MAX_NOTE_BYTES + 4096;

function malformed(why: string): TlogError {
  return new TlogError('malformed', `malformed fork evidence: ${why}`);
}

/** The tree size and root a note's checkpoint text states (nothing verified). */
function statedCheckpoint(note: string): Checkpoint {
  return parseCheckpoint(parseSignedNote(note, { maxSize: MAX_NOTE_BYTES }).text);
}

function checkOrder(notes: readonly [string, string]): void {
  const [a, b] = notes.map(statedCheckpoint) as [Checkpoint, Checkpoint];
  const inOrder =
    a.treeSize !== b.treeSize
      ? a.treeSize < b.treeSize
      : Buffer.compare(Buffer.from(a.rootHash), Buffer.from(b.rootHash)) < 0;
  if (!inOrder) throw malformed('the smaller checkpoint must come first');
}

/** Formats evidence as text. */
export function formatForkEvidence(evidence: ForkEvidence): string {
  if (evidence.proof.length > MAX_PROOF_HASHES) throw malformed('too many proof hashes');
  const lines = [FORK_EVIDENCE_HEADER];
  for (const h of evidence.proof) {
    if (h.length !== HASH_SIZE) throw malformed(`proof hash of ${h.length} bytes`);
    lines.push(encodeBase64(h));
  }
  checkOrder(evidence.notes);
  return `${lines.join('\n')}\n\n${evidence.notes[0]}\n${evidence.notes[1]}`;
}

/**
 * Parses evidence (attacker-controlled) strictly: the header, up to 64 canonical base64 hashes,
 * a blank line, two signed checkpoint notes separated by a blank line, the smaller first.
 * Nothing is verified: see {@link verifyForkEvidence}.
 */
export function parseForkEvidence(text: string): ForkEvidence {
  if (Buffer.byteLength(text) > MAX_FORK_EVIDENCE_BYTES)
    throw new TlogError('limit', `fork evidence larger than ${MAX_FORK_EVIDENCE_BYTES} bytes`);
  const head = text.indexOf('\n\n');
  if (head < 0) throw malformed('no blank line after the proof');
  const [header, ...hashLines] = text.slice(0, head).split('\n');
  if (header !== FORK_EVIDENCE_HEADER) throw malformed('missing header line');
  if (hashLines.length > MAX_PROOF_HASHES) throw malformed('too many proof hashes');
  const proof = hashLines.map((line, i) => {
    const h = decodeBase64(line, `fork evidence proof hash ${i}`);
    if (h.length !== HASH_SIZE) throw malformed(`proof hash ${i} has ${h.length} bytes`);
    return h;
  });
  // A checkpoint's text has no blank line, nor do signature lines: the first note ends at the
  // second blank line after its start.
  const start = head + 2;
  const textEnd = text.indexOf('\n\n', start);
  const noteEnd = textEnd < 0 ? -1 : text.indexOf('\n\n', textEnd + 2);
  if (noteEnd < 0) throw malformed('fewer than two notes');
  const notes: [string, string] = [text.slice(start, noteEnd + 1), text.slice(noteEnd + 2)];
  const evidence = { notes, proof };
  if (formatForkEvidence(evidence) !== text) throw malformed('not in canonical form');
  return evidence;
}

/** Evidence that verified: the log, and its two checkpoints that cannot both be true. */
export interface VerifiedForkEvidence {
  readonly origin: string;
  readonly checkpoints: readonly [Checkpoint, Checkpoint];
  readonly reason: string;
}

/**
 * Verifies fork evidence with the log's keys alone: both notes carry a valid signature by a log
 * key named after the same origin, and the proof shows they cannot both be true — a second root
 * for one size, or a proof that leads to the larger root but not to the smaller. Throws a
 * `TlogError` otherwise (evidence that does not verify is not evidence).
 */
export function verifyForkEvidence(
  evidence: string | ForkEvidence,
  logKeys: readonly NoteVerifier[],
): VerifiedForkEvidence {
  const e = typeof evidence === 'string' ? parseForkEvidence(evidence) : evidence;
  checkOrder(e.notes);
  const [a, b] = e.notes.map(
    (note) => openCheckpoint(note, logKeys, [], { maxSize: MAX_NOTE_BYTES }).checkpoint,
  ) as [Checkpoint, Checkpoint];
  if (a.origin !== b.origin) {
    throw new TlogError('proof', `not a fork: checkpoints of ${a.origin} and ${b.origin}`);
  }
  const relation = relateCheckpoints(
    { treeSize: a.treeSize, rootHash: a.rootHash, note: e.notes[0] },
    { treeSize: b.treeSize, rootHash: b.rootHash, note: e.notes[1] },
    e.proof,
  );
  if (relation.kind !== 'fork') {
    const why =
      relation.kind === 'bad-data'
        ? relation.reason
        : `the checkpoints are ${relation.kind === 'same' ? 'the same' : 'consistent'}`;
    throw new TlogError('proof', `not evidence of a fork: ${why}`);
  }
  return { origin: a.origin, checkpoints: [a, b], reason: relation.reason };
}
