/**
 * The tlog module: a pure implementation of the C2SP transparency-log formats — RFC 6962/9162
 * hashing and proofs, tlog-tiles, signed-note, tlog-checkpoint, tlog-cosignature/v1,
 * tlog-proof and tlog-policy. No I/O: storage is reached through {@link HashReader} and
 * {@link TileReader}.
 */
export { TlogError, type TlogErrorCode } from './errors.js';
export { decodeBase64, encodeBase64, equalBytes, parseDecimal } from './encoding.js';
export { EMPTY_ROOT, HASH_SIZE, hashChildren, hashLeaf, hashLeavesAt, hashPairs } from './hash.js';
export {
  type HashPlan,
  type HashReader,
  type TreeNode,
  planTreeHash,
  rangeNodes,
  runPlan,
  runPlans,
  subtreeHash,
  treeHash,
} from './tree.js';
export {
  completeConsistencyProof,
  planCompleteConsistencyProof,
  planConsistencyProof,
  planInclusionProof,
  proveCompleteConsistency,
  proveConsistency,
  proveInclusion,
  proveInclusions,
  rootFromInclusionProof,
  rootsFromConsistencyProof,
  verifyConsistency,
  verifyInclusion,
} from './proof.js';
export {
  type CheckpointRelation,
  type ForkEvidence,
  type VerifiedCheckpoint,
  consistencyProofSizes,
  relateCheckpoints,
  relateCheckpointsWith,
} from './relation.js';
export {
  FORK_EVIDENCE_HEADER,
  MAX_FORK_EVIDENCE_BYTES,
  type VerifiedForkEvidence,
  formatForkEvidence,
  parseForkEvidence,
  verifyForkEvidence,
} from './evidence.js';
export {
  type EntryBundleTile,
  MAX_TILE_LEVEL,
  TILE_HEIGHT,
  TILE_WIDTH,
  type SubtreeCache,
  type Tile,
  type TilePathTarget,
  type TileReader,
  boundedSubtreeCache,
  entryBundlePath,
  formatTileIndex,
  parseTilePath,
  tileAt,
  tileHashReader,
  tileHashes,
  tilePath,
  tilePathReader,
  tilesForNodes,
} from './tile.js';
export {
  EMPTY_EDGE,
  type TileData,
  type TileEdge,
  appendLeaves,
  edgeFromTiles,
  edgeRootHash,
  edgeTiles,
} from './edge.js';
export { MAX_ENTRY_SIZE, formatEntryBundle, parseEntryBundle } from './bundle.js';
export {
  type NoteSigner,
  type NoteVerifier,
  SIG_TYPE_COSIGNATURE_V1,
  SIG_TYPE_ED25519,
  type SignatureType,
  type SignerOptions,
  computeKeyId,
  formatSignerKey,
  formatVerifierKey,
  generateKey,
  isValidKeyName,
  newSigner,
  newVerifier,
  parseSignerKey,
  parseVerifierKey,
} from './keys.js';
export {
  type NoteLimits,
  type NoteSignature,
  type OpenedNote,
  type SignedNote,
  formatSignatureLine,
  formatSignedNote,
  openNote,
  parseSignatureLine,
  parseSignedNote,
  signNote,
} from './note.js';
export {
  type Checkpoint,
  type SignedCheckpoint,
  checkpointBytes,
  formatCheckpoint,
  openCheckpoint,
  parseCheckpoint,
} from './checkpoint.js';
export {
  COSIGNATURE_SIZE,
  cosignatureMessage,
  cosignatureTimestamp,
  decodeTimestampedSignature,
  encodeTimestampedSignature,
} from './cosignature.js';
export {
  type PolicyLog,
  type PolicyWitness,
  type QuorumRule,
  type TlogPolicy,
  type TlogPolicyExtension,
  formatTlogPolicy,
  parseTlogPolicy,
  quorumSatisfied,
  quorumTime,
} from './policy.js';
export {
  TLOG_PROOF_HEADER,
  type TlogProof,
  type TlogProofOptions,
  type VerifiedTlogProof,
  formatTlogProof,
  parseTlogProof,
  verifyTlogProof,
} from './tlogproof.js';
export {
  type AddCheckpointRequest,
  MAX_CONSISTENCY_LINES,
  formatAddCheckpoint,
  parseAddCheckpoint,
} from './add-checkpoint.js';
