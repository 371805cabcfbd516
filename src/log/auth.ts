/**
 * Who may submit: builders authenticate with a bearer token; the server keeps only SHA-256
 * hashes of tokens, in a submitters file of lines `<name> <sha256 hex of token>`. A line
 * starting with `!` revokes a builder: its token is recognised and refused (403).
 */
import { createHash, randomBytes } from 'node:crypto';
import { HttpError } from '../server/index.js';

interface Submitter {
  readonly name: string;
  readonly revoked: boolean;
}

/** Checks Authorization headers against the known submitters. */
export class Submitters {
  private readonly byHash: ReadonlyMap<string, Submitter>;

  constructor(byHash: ReadonlyMap<string, Submitter>) {
    this.byHash = byHash;
  }

  get size(): number {
    return this.byHash.size;
  }

  /**
   * The submitter a request's `Authorization: Bearer <token>` names; 401 when missing or
   * unknown, 403 when the submitter is revoked.
   */
  authenticate(header: string | undefined): string {
    const challenge = { 'WWW-Authenticate': 'Bearer realm="accord-log"' };
    const m = /^Bearer ([A-Za-z0-9._~+/=-]{16,512})$/.exec(header ?? '');
    if (m?.[1] === undefined)
      throw new HttpError(401, 'missing or malformed bearer token', challenge);
    const submitter = this.byHash.get(hashToken(m[1]));
    if (submitter === undefined) throw new HttpError(401, 'unknown token', challenge);
    if (submitter.revoked) throw new HttpError(403, `submitter ${submitter.name} is revoked`);
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
