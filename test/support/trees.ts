/** Test support: file trees with every kind of entry NAR covers, written to a directory. */
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';

/** A small deterministic PRNG (mulberry32), so a failing tree can be rebuilt from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Names that stress sorting and encoding: case, dots, spaces, UTF-8, non-UTF-8, 255 bytes. */
export const ODD_NAMES: readonly Buffer[] = [
  'A',
  'a',
  'B',
  '-dash',
  '.hidden',
  '..double',
  'with space',
  'tab\there',
  'new\nline',
  'back\\slash',
  'ünïcödé',
  '日本語',
  'emoji-😀',
  'x'.repeat(255),
  'Z',
  'z',
  '_',
  '~tilde',
]
  .map((s) => Buffer.from(s))
  .concat([Buffer.from([0xff, 0xfe, 0x41]), Buffer.from([0x80])]);

/** Writes a random tree below `root` (which must not exist) and returns how many entries. */
export function writeRandomTree(root: string, seed: number, maxEntries = 60): number {
  const random = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  let count = 0;
  const fill = (dir: Buffer, depth: number) => {
    mkdirSync(dir);
    const n = depth > 4 ? 0 : (depth === 0 ? 4 : 0) + Math.floor(random() * 6);
    const used = new Set<string>();
    for (let i = 0; i < n && count < maxEntries; i++) {
      const name =
        random() < 0.3 ? pick(ODD_NAMES) : Buffer.from(`f${Math.floor(random() * 1000)}`);
      if (used.has(name.toString('hex'))) continue;
      used.add(name.toString('hex'));
      count++;
      const path = Buffer.concat([dir, Buffer.from('/'), name]);
      const kind = random();
      if (kind < 0.45) {
        const size = pick([0, 1, 7, 8, 9, 100, 4096, 70_000]);
        const data = Buffer.alloc(size);
        for (let j = 0; j < size; j++) data[j] = Math.floor(random() * 256);
        writeFileSync(path, data);
        // Owner-execute is the only bit Nix keeps; group/other execute alone must not count.
        chmodSync(path, pick([0o644, 0o755, 0o700, 0o611, 0o400]));
      } else if (kind < 0.6) {
        symlinkSync(pick(['target', '/nix/store/nothing', '../up', 'x'.repeat(300), 'a b']), path);
      } else {
        fill(path, depth + 1);
      }
    }
  };
  fill(Buffer.from(root), 0);
  return count;
}
