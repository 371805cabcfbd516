/**
 * A rebuilder's own binary cache directory: the NAR of every output it built (uncompressed)
 * with a narinfo, so that a monitor given it (`monitor serve --cache ORIGIN=file://DIR`, or the
 * directory served over HTTP) can compare it with other builders' NARs.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClaimJson } from '../claim/index.js';
import { narSourceFromPath } from '../host/index.js';
import {
  NIX_STORE_DIR,
  encodeNix32,
  formatCacheInfo,
  formatNarInfo,
  parseHash,
  parseStorePath,
  writeNar,
} from '../nix/index.js';

/** Writes a file atomically (a reader never sees half of it). */
function writeAtomic(path: string, data: string | Uint8Array): void {
  writeFileSync(`${path}.tmp`, data);
  renameSync(`${path}.tmp`, path);
}

/** Stores the NAR of the built copy at `path` under the claim's store path. */
export function writeBuiltNar(dir: string, claim: ClaimJson, path: string): void {
  const storePath = parseStorePath(claim.storePath);
  mkdirSync(join(dir, 'nar'), { recursive: true });
  writeAtomic(
    join(dir, 'nix-cache-info'),
    formatCacheInfo({
      storeDir: storePath.storeDir || NIX_STORE_DIR,
      wantMassQuery: true,
      priority: 50,
    }),
  );
  const narHash = parseHash(claim.narHash);
  const file = `nar/${encodeNix32(narHash.digest)}.nar`;
  writeAtomic(join(dir, file), Buffer.concat([...writeNar(narSourceFromPath(path))]));
  writeAtomic(
    join(dir, `${storePath.hashPart}.narinfo`),
    formatNarInfo({
      storePath,
      url: file,
      compression: 'none',
      narHash,
      narSize: claim.narSize,
      references: claim.references,
      ...(claim.deriver === undefined ? {} : { deriver: claim.deriver }),
      sigs: [],
    }),
  );
}
