/**
 * Who may submit: builders authenticate with a bearer token; the server keeps only SHA-256
 * hashes of tokens, in a submitters file of lines `<name> <sha256 hex of token>`. A line
 * starting with `!` revokes a builder: its token is recognised and refused.
 */
import { createHash, randomBytes } from 'node:crypto';

/**
 * Why a submission was not authenticated: `unauthenticated` (no token, a malformed one, or one
 * no submitter has) or `revoked` (the token of a revoked submitter).
 */
export type AuthErrorCode = 'unauthenticated' | 'revoked';

export class AuthError extends Error {
  override readonly name = 'AuthError';
  constructor(
    readonly code: AuthErrorCode,
    message: string,
  ) {
    super(message);
  }
}

interface Submitter {
  readonly name: string;
  readonly revoked: boolean;
}

/** Checks Authorization headers against the known submitters. */
export class Submitters {
  private byHash: ReadonlyMap<string, Submitter>;

  constructor(byHash: ReadonlyMap<string, Submitter>) {
    this.byHash = byHash;
  }

  /** Takes the submitters of `next` in place of these (a reloaded file): at once, for all. */
  replace(next: Submitters): void {
    this.byHash = next.byHash;
  }

  get size(): number {
    return this.byHash.size;
  }

  /**
   * The submitter a request's `Authorization: Bearer <token>` names; an {@link AuthError} when
   * the token is missing, unknown or revoked.
   */
  authenticate(header: string | undefined): string {
    const m = /^Bearer ([A-Za-z0-9._~+/=-]{16,512})$/.exec(header ?? '');
    if (m?.[1] === undefined)
      throw new AuthError('unauthenticated', 'missing or malformed bearer token');
    const submitter = this.byHash.get(hashToken(m[1]));
    if (submitter === undefined) throw new AuthError('unauthenticated', 'unknown token');
    if (submitter.revoked) throw new AuthError('revoked', `submitter ${submitter.name} is revoked`);
    return submitter.name;
  }
}

/** The hex SHA-256 of a token, as stored in a submitters file. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** A new random token (256 bits, base64url). */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Parses a submitters file; throws naming the bad line. */
export function parseSubmitters(text: string): Submitters {
  const byHash = new Map<string, Submitter>();
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(!?)([A-Za-z0-9._@-]{1,128})\s+([0-9a-f]{64})$/.exec(line);
    if (m === null) throw new Error(`submitters file line ${i + 1}: want "[!]name sha256-hex"`);
    const [, bang, name = '', hash = ''] = m;
    if (byHash.has(hash)) throw new Error(`submitters file line ${i + 1}: token listed twice`);
    byHash.set(hash, { name, revoked: bang === '!' });
  }
  return new Submitters(byHash);
}

/** A submitters file line for a builder and its token. */
export function submitterLine(name: string, token: string): string {
  return `${name} ${hashToken(token)}\n`;
}
