/** Test support: deterministic, valid claims in the JSON form `accord submit` sends. */
import { createHash } from 'node:crypto';
import type { ClaimJson } from '../../src/claim/index.js';
import { NIX32_ALPHABET, type NarSource, encodeNix32, writeNar } from '../../src/nix/index.js';

/** The 32-character hash part of test path `i`. */
export function hashPartOf(i: number, salt = ''): string {
  return encodeNix32(createHash('sha1').update(`path ${salt}${i}`).digest());
}

/** A valid claim about test path `i`; `variant` changes the NAR hash (a disagreeing build). */
export function makeClaim(i: number, variant = 0, salt = ''): ClaimJson {
  const narHash = createHash('sha256').update(`nar ${salt}${i} ${variant}`).digest();
  return {
    storePath: `/nix/store/${hashPartOf(i, salt)}-pkg-${i}`,
    narHash: `sha256:${encodeNix32(narHash)}`,
    narSize: 1000 + i,
    references: i > 0 ? [`${hashPartOf(i - 1, salt)}-pkg-${i - 1}`] : [],
    deriver: `${hashPartOf(i + 1_000_000, salt)}-pkg-${i}.drv`,
  };
}

/** A NAR of a one-file tree, its hash and size. */
export function makeNar(text: string) {
  const data = Buffer.from(text);
  const source: NarSource = {
    type: 'regular',
    executable: false,
    size: data.length,
    contents: () => [data],
  };
  const nar = Buffer.concat([...writeNar(source)]);
  return {
    nar,
    hash: `sha256:${encodeNix32(createHash('sha256').update(nar).digest())}`,
    size: nar.length,
  };
}

/** A claim for test path `i` (`salt` keeps test files apart) with the real NAR of `text`. */
export function claimWithNar(i: number, salt: string, text: string, name = `p${i}`) {
  const { nar, hash, size } = makeNar(text);
  const hashPart = hashPartOf(i, salt);
  const claim: ClaimJson = {
    storePath: `/nix/store/${hashPart}-${name}`,
    narHash: hash,
    narSize: size,
    references: [],
  };
  return { hashPart, claim, nar };
}

/** The `i`th hash part in sorted order (the nix32 alphabet is in ASCII order). */
export function sortedHashPart(i: number): string {
  return Array.from(
    i.toString(32).padStart(32, '0'),
    (d) => NIX32_ALPHABET[parseInt(d, 32)] ?? '',
  ).join('');
}
