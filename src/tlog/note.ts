/**
 * C2SP signed-note: a text ending in newline, a blank line, then signature lines
 * `— <key name> base64(key ID ‖ signature)`. Parsing is strict and opening verifies every
 * signature by a known key.
 */
import { TlogError } from './errors.js';
import { decodeBase64, decodeUtf8, encodeBase64, encodeUtf8 } from './encoding.js';
import { type NoteSigner, type NoteVerifier, isValidKeyName } from './keys.js';

/** One signature line: the signer's name, key ID, and the signature bytes after the key ID. */
export interface NoteSignature {
  readonly name: string;
  readonly keyId: number;
  readonly signature: Uint8Array;
}

/** A note split into its text and signatures; nothing verified. */
export interface SignedNote {
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

/** A note whose signatures by known keys all verified. */
export interface OpenedNote {
  readonly text: string;
  /** Valid signatures by known keys, one per key, with the key that checked each. */
  readonly verified: readonly {
    readonly signature: NoteSignature;
    readonly verifier: NoteVerifier;
  }[];
  /** Signatures by keys the caller did not pass, kept but not trusted. */
  readonly unverified: readonly NoteSignature[];
}

/** Caps applied before anything else is parsed. */
export interface NoteLimits {
  /** Largest note in bytes (default 1 MiB). */
  readonly maxSize?: number;
  /** Most signature lines (default 100; the spec requires accepting at least 16). */
  readonly maxSignatures?: number;
}

const DEFAULT_MAX_SIZE = 1 << 20;
const DEFAULT_MAX_SIGNATURES = 100;
const SIG_PREFIX = '\u2014 ';
// ASCII control characters other than newline (signed-note §Format).
const CONTROL = /[\0-\x09\x0b-\x1f]/;
// A string that UTF-8 cannot encode (only possible when the caller passes a string).
const LONE_SURROGATE = /\p{Cs}/u;

function malformed(why: string): TlogError {
  return new TlogError('malformed', `malformed note: ${why}`);
}

/** Checks a note text: ends in newline, no control characters but newline. */
function checkText(text: string): void {
  if (!text.endsWith('\n')) throw malformed('text does not end in a newline');
  if (CONTROL.test(text)) throw malformed('text contains a control character');
  if (LONE_SURROGATE.test(text)) throw malformed('text is not valid UTF-8');
}

/** Formats one signature line, with its final newline. */
export function formatSignatureLine(sig: NoteSignature): string {
  const bytes = Buffer.alloc(4 + sig.signature.length);
  bytes.writeUInt32BE(sig.keyId, 0);
  bytes.set(sig.signature, 4);
  return `${SIG_PREFIX}${sig.name} ${encodeBase64(bytes)}\n`;
}

/** Parses one signature line without its newline. */
export function parseSignatureLine(line: string): NoteSignature {
  if (!line.startsWith(SIG_PREFIX)) throw malformed('signature line does not start with "— "');
  const rest = line.slice(SIG_PREFIX.length);
  const space = rest.indexOf(' ');
  if (space < 0) throw malformed('signature line has no signature');
  const name = rest.slice(0, space);
  if (!isValidKeyName(name)) throw malformed(`invalid key name ${JSON.stringify(name)}`);
  const bytes = decodeBase64(rest.slice(space + 1), `signature by ${name}`);
  if (bytes.length < 5) throw malformed(`signature by ${name} is too short`);
  const keyId = Buffer.from(bytes.buffer, bytes.byteOffset, 4).readUInt32BE(0);
  return { name, keyId, signature: bytes.subarray(4) };
}

function toText(msg: string | Uint8Array, maxSize: number): string {
  const size = typeof msg === 'string' ? Buffer.byteLength(msg) : msg.length;
  if (size > maxSize) throw new TlogError('limit', `note of ${size} bytes exceeds ${maxSize}`);
  return typeof msg === 'string' ? msg : decodeUtf8(msg, 'note');
}

/**
 * Splits a signed note (attacker-controlled) into text and signature lines, at the last blank
 * line. Verifies nothing: use {@link openNote} to trust it.
 */
export function parseSignedNote(msg: string | Uint8Array, limits: NoteLimits = {}): SignedNote {
  const text = toText(msg, limits.maxSize ?? DEFAULT_MAX_SIZE);
  if (LONE_SURROGATE.test(text)) throw malformed('not valid UTF-8');
  if (CONTROL.test(text)) throw malformed('contains a control character');
  const split = text.lastIndexOf('\n\n');
  if (split < 0) throw malformed('no blank line before the signatures');
  const body = text.slice(0, split + 1);
  const sigText = text.slice(split + 2);
  if (!sigText.endsWith('\n')) throw malformed('signatures do not end in a newline');
  const lines = sigText.slice(0, -1).split('\n');
  const maxSignatures = limits.maxSignatures ?? DEFAULT_MAX_SIGNATURES;
  if (lines.length > maxSignatures) {
    throw new TlogError('limit', `note has ${lines.length} signatures, limit ${maxSignatures}`);
  }
  return { text: body, signatures: lines.map(parseSignatureLine) };
}

/** Formats a note from its text and signatures. */
export function formatSignedNote(note: SignedNote): string {
  checkText(note.text);
  if (note.signatures.length === 0) throw malformed('a signed note needs a signature');
  return `${note.text}\n${note.signatures.map(formatSignatureLine).join('')}`;
}

/** Signs `text` (which must end in a newline) with each signer, in order. */
export function signNote(text: string, signers: readonly NoteSigner[]): string {
  checkText(text);
  const bytes = encodeUtf8(text);
  const signatures = signers.map((s) => ({
    name: s.name,
    keyId: s.keyId,
    signature: s.sign(bytes),
  }));
  return formatSignedNote({ text, signatures });
}

function verifierIndex(verifiers: readonly NoteVerifier[]): Map<string, NoteVerifier> {
  const index = new Map<string, NoteVerifier>();
  for (const v of verifiers) {
    const key = `${v.name}\n${v.keyId}`;
    const other = index.get(key);
    if (other !== undefined && other !== v) {
      throw new TlogError('signature', `ambiguous verifier keys: two keys ${v.name}+${v.keyId}`);
    }
    index.set(key, v);
  }
  return index;
}

/**
 * Opens a signed note against trusted verifiers (signed-note §Signatures): signatures by
 * unknown keys are kept aside, every signature whose name and key ID match a known key must
 * verify (else `signature` error: the whole note is rejected), and at least one must (else
 * `untrusted`).
 */
export function openNote(
  msg: string | Uint8Array,
  verifiers: readonly NoteVerifier[],
  limits: NoteLimits = {},
): OpenedNote {
  const note = parseSignedNote(msg, limits);
  const index = verifierIndex(verifiers);
  const textBytes = encodeUtf8(note.text);
  const verified: { signature: NoteSignature; verifier: NoteVerifier }[] = [];
  const unverified: NoteSignature[] = [];
  for (const sig of note.signatures) {
    const verifier = index.get(`${sig.name}\n${sig.keyId}`);
    if (verifier === undefined) {
      unverified.push(sig);
      continue;
    }
    if (!verifier.verify(textBytes, sig.signature)) {
      throw new TlogError('signature', `note signature by ${sig.name} does not verify`);
    }
    if (!verified.some((v) => v.verifier === verifier)) verified.push({ signature: sig, verifier });
  }
  if (verified.length === 0) {
    throw new TlogError('untrusted', 'note has no signature by a known key');
  }
  return { text: note.text, verified, unverified };
}
