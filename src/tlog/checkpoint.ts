/** C2SP tlog-checkpoint: the note text `<origin>\n<tree size>\n<base64 root hash>\n[extensions]`. */
import { TlogError } from './errors.js';
import { decodeBase64, encodeBase64, encodeUtf8, checkIndex, parseDecimal } from './encoding.js';
import { HASH_SIZE } from './hash.js';
import { type NoteVerifier, SIG_TYPE_ED25519 } from './keys.js';
import { type NoteLimits, type OpenedNote, openNote } from './note.js';

/** A log's signed statement of its tree at one size. */
export interface Checkpoint {
  readonly origin: string;
  readonly treeSize: number;
  readonly rootHash: Uint8Array;
  /** Opaque extension lines, each non-empty, kept in order. */
  readonly extensions: readonly string[];
}

function malformed(why: string): TlogError {
  return new TlogError('malformed', `malformed checkpoint: ${why}`);
}

/** Formats a checkpoint's note text (ending in a newline). */
export function formatCheckpoint(c: Checkpoint): string {
  if (c.origin.length === 0 || c.origin.includes('\n')) throw malformed('bad origin');
  checkIndex(c.treeSize, 'tree size');
  if (c.rootHash.length !== HASH_SIZE) throw malformed(`root hash of ${c.rootHash.length} bytes`);
  for (const e of c.extensions)
    if (e.length === 0 || e.includes('\n')) throw malformed('bad extension');
  const lines = [c.origin, String(c.treeSize), encodeBase64(c.rootHash), ...c.extensions];
  return `${lines.join('\n')}\n`;
}

/**
 * Parses a checkpoint's note text strictly: at least three lines, each ending in a newline; a
 * non-empty origin; the tree size in decimal without leading zeros; the root hash as canonical
 * base64 of 32 bytes; non-empty extension lines.
 */
export function parseCheckpoint(text: string): Checkpoint {
  if (!text.endsWith('\n')) throw malformed('does not end in a newline');
  const lines = text.slice(0, -1).split('\n');
  const [origin, size, root, ...extensions] = lines;
  if (origin === undefined || size === undefined || root === undefined) {
    throw malformed('fewer than three lines');
  }
  if (origin.length === 0) throw malformed('empty origin');
  const treeSize = parseDecimal(size, 'checkpoint tree size');
  const rootHash = decodeBase64(root, 'checkpoint root hash');
  if (rootHash.length !== HASH_SIZE) throw malformed(`root hash of ${rootHash.length} bytes`);
  if (extensions.some((e) => e.length === 0)) throw malformed('empty extension line');
  return { origin, treeSize, rootHash, extensions };
}

/** A checkpoint together with the note it was read from. */
export interface SignedCheckpoint {
  readonly checkpoint: Checkpoint;
  readonly note: OpenedNote;
}

/**
 * Opens a signed checkpoint from a log: the note must carry a valid Ed25519 signature by one of
 * `logKeys` whose key name is the checkpoint's origin. Other known keys (for example witnesses)
 * are verified too and listed in `note.verified`; unknown ones are ignored.
 */
export function openCheckpoint(
  msg: string | Uint8Array,
  logKeys: readonly NoteVerifier[],
  otherKeys: readonly NoteVerifier[] = [],
  limits: NoteLimits = {},
): SignedCheckpoint {
  const note = openNote(msg, [...logKeys, ...otherKeys], limits);
  const checkpoint = parseCheckpoint(note.text);
  const signedByLog = note.verified.some(
    ({ verifier }) =>
      verifier.type === SIG_TYPE_ED25519 &&
      verifier.name === checkpoint.origin &&
      logKeys.includes(verifier),
  );
  if (!signedByLog) {
    throw new TlogError(
      'untrusted',
      `checkpoint for ${checkpoint.origin} has no signature by its log`,
    );
  }
  return { checkpoint, note };
}

/** The note text bytes of a checkpoint, as signed. */
export function checkpointBytes(c: Checkpoint): Uint8Array {
  return encodeUtf8(formatCheckpoint(c));
}
