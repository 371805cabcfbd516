/**
 * C2SP tlog-proof@v1: an offline-verifiable proof that an entry is in a log, as text — header,
 * optional extra data, the entry's index, its inclusion proof, and the (cosigned) checkpoint.
 */
import { TlogError } from './errors.js';
import { checkIndex, decodeBase64, encodeBase64, parseDecimal } from './encoding.js';
import { HASH_SIZE } from './hash.js';
import { SIG_TYPE_COSIGNATURE_V1 } from './keys.js';
import { type Checkpoint, openCheckpoint } from './checkpoint.js';
import { cosignatureTimestamp } from './cosignature.js';
import { type NoteLimits, parseSignedNote } from './note.js';
import { type TlogPolicy, quorumSatisfied } from './policy.js';
import { verifyInclusion } from './proof.js';

/** The first line of every tlog-proof. */
export const TLOG_PROOF_HEADER = 'c2sp.org/tlog-proof@v1';

/** An inclusion proof with the checkpoint it proves against. */
export interface TlogProof {
  /** Opaque, unauthenticated data for the application (the `extra` line), if any. */
  readonly extra?: Uint8Array;
  readonly index: number;
  readonly inclusionProof: readonly Uint8Array[];
  /** The signed checkpoint note, verbatim. */
  readonly checkpoint: string;
}

// An inclusion proof in a tree of at most 2⁶³ leaves has at most 63 hashes.
const MAX_PROOF_HASHES = 63;

function malformed(why: string): TlogError {
  return new TlogError('malformed', `malformed tlog-proof: ${why}`);
}

/** Formats a proof as text. */
export function formatTlogProof(proof: TlogProof): string {
  checkIndex(proof.index, 'tlog-proof index');
  const lines = [TLOG_PROOF_HEADER];
  if (proof.extra !== undefined) lines.push(`extra ${encodeBase64(proof.extra)}`);
  lines.push(`index ${proof.index}`);
  for (const h of proof.inclusionProof) {
    if (h.length !== HASH_SIZE) throw malformed(`proof hash of ${h.length} bytes`);
    lines.push(encodeBase64(h));
  }
  parseSignedNote(proof.checkpoint);
  return `${lines.join('\n')}\n\n${proof.checkpoint}`;
}

/** Options for {@link parseTlogProof}. */
export interface TlogProofOptions extends NoteLimits {
  /**
   * A signed note the caller has parsed already (typically the checkpoint it verified): a proof
   * whose checkpoint is exactly this text does not parse it again. Any other is parsed.
   */
  readonly parsedCheckpoint?: string;
}

/**
 * Parses a proof (attacker-controlled) strictly: the header; an optional `extra <base64>`;
 * `index <decimal>`; up to 63 canonical base64 hashes; a blank line; a signed note. Nothing is
 * verified: see {@link verifyTlogProof}.
 */
export function parseTlogProof(text: string, limits: TlogProofOptions = {}): TlogProof {
  const maxSize = (limits.maxSize ?? 1 << 20) + 4096;
  if (Buffer.byteLength(text) > maxSize) throw new TlogError('limit', 'tlog-proof too large');
  let at = 0;
  const nextLine = (): string => {
    const end = text.indexOf('\n', at);
    if (end < 0) throw malformed('truncated');
    const line = text.slice(at, end);
    at = end + 1;
    return line;
  };
  if (nextLine() !== TLOG_PROOF_HEADER) throw malformed('missing header line');
  let line = nextLine();
  let extra: Uint8Array | undefined;
  if (line.startsWith('extra ')) {
    extra = decodeBase64(line.slice('extra '.length), 'tlog-proof extra');
    line = nextLine();
  }
  if (!line.startsWith('index ')) throw malformed('missing index line');
  const index = parseDecimal(line.slice('index '.length), 'tlog-proof index');
  const inclusionProof: Uint8Array[] = [];
  for (line = nextLine(); line !== ''; line = nextLine()) {
    if (inclusionProof.length === MAX_PROOF_HASHES) throw malformed('more than 63 proof hashes');
    const hash = decodeBase64(line, 'tlog-proof hash');
    if (hash.length !== HASH_SIZE) throw malformed(`proof hash of ${hash.length} bytes`);
    inclusionProof.push(hash);
  }
  const checkpoint = text.slice(at);
  if (checkpoint !== limits.parsedCheckpoint) parseSignedNote(checkpoint, limits);
  return extra === undefined
    ? { index, inclusionProof, checkpoint }
    : { extra, index, inclusionProof, checkpoint };
}

/** What a verified proof establishes. */
export interface VerifiedTlogProof {
  readonly checkpoint: Checkpoint;
  readonly index: number;
  /** Witnesses (by policy name) whose cosignature verified, with its timestamp. */
  readonly cosigners: readonly { readonly name: string; readonly timestamp: number }[];
}

/**
 * Verifies a proof offline (tlog-proof §Verifying): the checkpoint is signed by a log in the
 * policy whose key name is the origin; every cosignature by a policy witness verifies and
 * together they satisfy the quorum; the inclusion proof binds `leafHash` at `index` to the
 * checkpoint's root. Throws `signature`, `untrusted` or `proof` errors.
 */
export function verifyTlogProof(
  proof: TlogProof,
  leafHash: Uint8Array,
  policy: TlogPolicy,
  limits: NoteLimits = {},
): VerifiedTlogProof {
  const witnessKeys = policy.witnesses.map((w) => w.verifier);
  const { checkpoint, note } = openCheckpoint(
    proof.checkpoint,
    policy.logs.map((l) => l.verifier),
    witnessKeys,
    limits,
  );
  const cosigners = note.verified.flatMap(({ signature, verifier }) => {
    const witness = policy.witnesses.find((w) => w.verifier === verifier);
    if (witness === undefined || verifier.type !== SIG_TYPE_COSIGNATURE_V1) return [];
    return [{ name: witness.name, timestamp: cosignatureTimestamp(signature.signature) }];
  });
  if (!quorumSatisfied(policy.quorum, new Set(cosigners.map((c) => c.name)))) {
    throw new TlogError('untrusted', `checkpoint of ${checkpoint.origin} lacks a witness quorum`);
  }
  verifyInclusion(
    leafHash,
    proof.index,
    checkpoint.treeSize,
    proof.inclusionProof,
    checkpoint.rootHash,
  );
  return { checkpoint, index: proof.index, cosigners };
}
