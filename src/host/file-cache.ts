/**
 * Writing a binary cache directory (for a `file://` URL): `nix-cache-info`, and per path an
 * uncompressed NAR at `nar/<nix32 SHA-256>.nar` with its narinfo (unsigned). Each file is
 * written whole under another name and renamed, so a reader never sees half of one.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClaimJson } from '../claim/index.js';
import {
  NIX_STORE_DIR,
  encodeNix32,
  formatCacheInfo,
  formatNarInfo,
  parseHash,
  parseStorePath,
} from '../nix/index.js';

function writeAtomic(path: string, data: string | Uint8Array): void {
  writeFileSync(`${path}.tmp`, data);
  renameSync(`${path}.tmp`, path);
}

/** Adds `paths` (each claim with its NAR) to the cache in `dir`, made if missing. */
export function writeFileCache(
  dir: string,
  paths: readonly { readonly claim: ClaimJson; readonly nar: Uint8Array }[],
  priority = 40,
): void {
  mkdirSync(join(dir, 'nar'), { recursive: true });
  writeAtomic(
    join(dir, 'nix-cache-info'),
    formatCacheInfo({ storeDir: NIX_STORE_DIR, wantMassQuery: true, priority }),
  );
  for (const { claim, nar } of paths) {
    const storePath = parseStorePath(claim.storePath);
    const narHash = parseHash(claim.narHash);
    const file = `nar/${encodeNix32(narHash.digest)}.nar`;
    writeAtomic(join(dir, file), nar);
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
}
