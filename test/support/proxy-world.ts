/** Test support: the files a proxy over test logs needs — its key, its policy, narinfos. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClaimJson } from '../../src/claim/index.js';
import {
  formatNarInfo,
  formatNixSecretKey,
  generateNixSecretKey,
  parseHash,
  parseStorePath,
} from '../../src/nix/index.js';
import type { TestLog } from './log.js';

/**
 * Writes `proxy.sk` (a new Nix key named `keyName`) and `policy` into `dir`: every one of
 * `logs` must agree, no witnesses. Returns the key.
 */
export function writeProxyFiles(dir: string, keyName: string, logs: readonly TestLog[]) {
  const key = generateNixSecretKey(keyName);
  writeFileSync(join(dir, 'proxy.sk'), formatNixSecretKey(key));
  writeFileSync(
    join(dir, 'policy'),
    [
      ...logs.map((l) => `log ${l.vkey} ${l.url}`),
      `trust all-logs ${logs.length} ${logs.map((l) => l.origin).join(' ')}`,
      'decide all-logs',
      'quorum none',
      '',
    ].join('\n'),
  );
  return key;
}

/** An upstream's narinfo for a claim: its NAR uncompressed at `nar/<hash part>.nar`. */
export function narinfoFor(p: { hashPart: string; claim: ClaimJson }): string {
  return formatNarInfo({
    storePath: parseStorePath(p.claim.storePath),
    url: `nar/${p.hashPart}.nar`,
    compression: 'none',
    narHash: parseHash(p.claim.narHash),
    narSize: p.claim.narSize,
    references: p.claim.references,
    sigs: [],
  });
}
