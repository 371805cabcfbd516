/**
 * The keys of an identity's log, as its key statements say (docs/identity.md): the chain the
 * proxy verified and keeps, the log keys valid at a time, and whether a claim counts — the
 * first checkpoint seen holding it must have been signed by a log key valid at that time, so a
 * rotated key is followed and a key revoked since T stops counting for what came after T.
 */
import {
  type IdentityState,
  type Refusal,
  foldStatements,
  keyStatus,
  logKeysAt,
  parseLogKey,
} from '../identity/index.js';
import type { ExcludedClaim, IdentityLog } from '../policy/index.js';
import type { Logger } from '../server/index.js';
import type { NoteVerifier } from '../tlog/index.js';
import type { ProxyState } from './state.js';

const seconds = (ms: number) => Math.floor(ms / 1000);

export class IdentityKeys {
  private current: IdentityState | undefined;
  private refreshedAt = 0;

  constructor(
    readonly log: IdentityLog,
    private readonly state: ProxyState,
    private readonly logger: Logger,
    private readonly refreshMs: number,
  ) {
    const kept = state.statements(log.origin);
    if (kept.length > 0) this.current = foldStatements(log.root, kept).state;
  }

  /** The log keys valid at `t` (POSIX seconds; now by default). */
  verifiers(t = seconds(Date.now())): NoteVerifier[] {
    return this.current === undefined ? [] : logKeysAt(this.current, t);
  }

  /** The statement notes of the chain held, by sequence (evidence for the keys). */
  notes(): readonly string[] {
    return this.current?.notes ?? [];
  }

  /**
   * The log keys the statements name and never revoked: what evidence against the log (a fork)
   * must be signed by. A revoked key may have signed anything since its theft.
   */
  unrevoked(): NoteVerifier[] {
    const state = this.current;
    if (state === undefined) return [];
    const revoked = new Set(
      state.statement.revocations.filter((r) => r.kind === 'log').map((r) => r.key),
    );
    return state.statement.keys
      .filter((k) => k.kind === 'log' && !revoked.has(k.key))
      .map((k) => parseLogKey(k.key));
  }

  /** Whether the statements should be read again (the refresh interval has passed). */
  due(): boolean {
    return Date.now() - this.refreshedAt >= this.refreshMs;
  }

  /**
   * The state the statement notes read from the log lead to, from the chain kept so far: the
   * log cannot take a statement back (the kept chain is the base), and what does not follow
   * from it — a note the root did not sign, a contradiction — is refused and reported, the
   * state staying at the last statement that held.
   */
  candidate(notes: readonly string[]): IdentityState | undefined {
    const result = foldStatements(this.log.root, notes, this.current);
    const refusals: Refusal[] = [...result.ignored];
    if (result.kind === 'refused') refusals.push(result.refusal);
    for (const r of refusals)
      this.logger.warn('key statement refused', {
        log: this.log.origin,
        identity: this.log.root.name,
        code: r.code,
        reason: r.message,
      });
    return result.state;
  }

  /** Takes a state whose new statements were shown to be in the log. */
  adopt(next: IdentityState): void {
    // `next` extends the chain kept (it was folded onto it): only new statements are stored.
    const known = this.current?.notes.length ?? 0;
    this.current = next;
    if (next.notes.length > known)
      this.state.saveStatements(this.log.origin, next.notes.slice(known), known);
  }

  /** Notes the statements were just read (or tried): the next read waits for the interval. */
  checked(): void {
    this.refreshedAt = Date.now();
  }

  /**
   * Why the log's entry `index` does not count (revoked, or not valid), or undefined when it does. It counts when the
   * first checkpoint the proxy saw holding it (else `latest`, the one just verified) was
   * signed, when it was seen, by a log key the statements make valid then; and no revocation
   * taints it: for a key revoked since T, the entries after the last tree the proxy saw
   * before T and before the first tree it saw signed by another valid key after T may have
   * been written with the stolen key, whatever signed later trees (a log's new key vouches for
   * its whole history, the attacker's entries included).
   */
  counts(
    index: number,
    latest: { readonly at: number; readonly signers: readonly string[] },
  ): Omit<ExcludedClaim, 'index'> | undefined {
    const state = this.current;
    if (state === undefined)
      return { cause: 'not-valid', reason: 'the identity has no key statement' };
    const origin = this.log.origin;
    const when = (t: number) => new Date(t * 1000).toISOString();
    for (const r of state.statement.revocations) {
      if (r.kind !== 'log' || index < this.state.sizeSeenBefore(origin, r.since)) continue;
      const clean = this.state
        .signersSince(origin, r.since)
        .find((c) =>
          c.signers.some((k) => k !== r.key && keyStatus(state, 'log', k, c.at) === 'valid'),
        );
      if (clean === undefined || index < clean.size)
        return {
          cause: 'revoked',
          reason: `logged after ${when(r.since)}, when ${r.key} was revoked as compromised, before the log was signed by another key`,
        };
    }
    const seen = this.state.signersOf(origin, index) ?? latest;
    const standing = seen.signers.map((key) => ({
      key,
      status: keyStatus(state, 'log', key, seen.at),
    }));
    if (standing.some((s) => s.status === 'valid')) return undefined;
    return {
      cause: standing.some((s) => s.status === 'revoked') ? 'revoked' : 'not-valid',
      reason: standing
        .map((s) => `signed under ${s.key}, ${s.status} at ${when(seen.at)}`)
        .join('; '),
    };
  }
}
