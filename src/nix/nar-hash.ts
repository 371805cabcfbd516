/** NAR hash and size in one pass, validating the archive as it streams. */
import { createHash, type Hash } from 'node:crypto';
import type { NixHash } from './hash.js';
import { type NarLimits, type NarListener, NarParser } from './nar-parse.js';
import { type NarSource, writeNar } from './nar-write.js';

/** The identity of a NAR: SHA-256 of its bytes, and their number. */
export interface NarSummary {
  readonly narHash: NixHash;
  readonly narSize: number;
}

/**
 * Hashes a NAR pushed in chunks while the parser validates it; `digest()` ends the archive and
 * throws `NixError` if it was malformed or truncated.
 */
export class NarHasher {
  private readonly hash: Hash = createHash('sha256');
  private readonly parser: NarParser;
  private size = 0;

  constructor(listener: NarListener = {}, limits: NarLimits = {}) {
    this.parser = new NarParser(listener, limits);
  }

  /** Bytes seen so far. */
  get narSize(): number {
    return this.size;
  }

  update(chunk: Uint8Array): void {
    this.parser.push(chunk);
    this.hash.update(chunk);
    this.size += chunk.length;
  }

  digest(): NarSummary {
    this.parser.end();
    return { narHash: { algorithm: 'sha256', digest: this.hash.digest() }, narSize: this.size };
  }
}

/** Validates and hashes a NAR arriving as chunks (for example a decompressed download). */
export async function hashNarStream(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  limits: NarLimits = {},
): Promise<NarSummary> {
  const hasher = new NarHasher({}, limits);
  for await (const chunk of chunks) hasher.update(chunk);
  return hasher.digest();
}

/**
 * Serialises a tree and hashes the result, as `nix hash path` does (`sha256:<nix32>` and the
 * NAR size). The writer's output is canonical by construction, so it is not re-parsed.
 */
export function hashNarSource(source: NarSource): NarSummary {
  const hash = createHash('sha256');
  let narSize = 0;
  for (const chunk of writeNar(source)) {
    hash.update(chunk);
    narSize += chunk.length;
  }
  return { narHash: { algorithm: 'sha256', digest: hash.digest() }, narSize };
}
