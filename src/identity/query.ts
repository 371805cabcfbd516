/**
 * What an identity's state says at a moment: which keys speak for it then, and whether a key
 * was revoked by then. A claim signed under a key revoked since T stops counting at T.
 */
import type { GuixPublicKey } from '../guix/index.js';
import type { NixPublicKey } from '../nix/index.js';
import type { NoteVerifier } from '../tlog/index.js';
import type { IdentityState } from './fold.js';
import { type KeyKind, normalizeKeyText, parseGuixKey, parseLogKey, parseNixKey } from './keys.js';

/** Where a key stands at a moment. */
export type KeyStatus = 'valid' | 'revoked' | 'not-yet-valid' | 'expired' | 'unknown';

/** When `key` (of `kind`, in statement form) was revoked, if it was. */
function revokedSince(state: IdentityState, kind: KeyKind, key: string): number | undefined {
  let since: number | undefined;
  for (const r of state.statement.revocations)
    if (r.kind === kind && r.key === key) since = Math.min(since ?? r.since, r.since);
  return since;
}

/**
 * Where `key` stands at time `t` (POSIX seconds): `revoked` from its revocation's `since` on
 * (whatever its validity), else `valid` from `from` until before `until`, `not-yet-valid`
 * before, `expired` after, `unknown` when the latest statement does not list it. `key` may be
 * in any form {@link normalizeKeyText} reads.
 */
export function keyStatus(state: IdentityState, kind: KeyKind, key: string, t: number): KeyStatus {
  const text = normalizeKeyText(kind, key);
  const since = revokedSince(state, kind, text);
  if (since !== undefined && t >= since) return 'revoked';
  const listed = state.statement.keys.find((k) => k.kind === kind && k.key === text);
  if (listed === undefined) return 'unknown';
  if (t < listed.from) return 'not-yet-valid';
  if (listed.until !== undefined && t >= listed.until) return 'expired';
  return 'valid';
}

/**
 * Whether `key` was revoked at time `t`: true from the revocation's `since` on. `t` is when
 * the signed thing is shown to have existed (a witness cosignature's timestamp), or now when
 * nothing shows it earlier.
 */
export function isRevoked(state: IdentityState, kind: KeyKind, key: string, t: number): boolean {
  const since = revokedSince(state, kind, normalizeKeyText(kind, key));
  return since !== undefined && t >= since;
}

/** The statement texts of the keys of `kind` valid at `t`, in statement order. */
export function keysAt(state: IdentityState, kind: KeyKind, t: number): string[] {
  return state.statement.keys
    .filter((k) => k.kind === kind && keyStatus(state, kind, k.key, t) === 'valid')
    .map((k) => k.key);
}

/** The log keys valid at `t`: verifiers for the identity's log checkpoints. */
export function logKeysAt(state: IdentityState, t: number): NoteVerifier[] {
  return keysAt(state, 'log', t).map(parseLogKey);
}

/** The Nix cache keys valid at `t`. */
export function nixKeysAt(state: IdentityState, t: number): NixPublicKey[] {
  return keysAt(state, 'nix', t).map(parseNixKey);
}

/** The Guix keys valid at `t`. */
export function guixKeysAt(state: IdentityState, t: number): GuixPublicKey[] {
  return keysAt(state, 'guix', t).map(parseGuixKey);
}
