import { describe, expect, it } from 'vitest';
import { canonicalDeriver, canonicalReferences, canonicalStorePath } from './canonical.js';
import { entryFromJson } from './claim.js';

const h = (c: string) => c.repeat(32);

describe('canonicalStorePath(), canonicalReferences(), canonicalDeriver()', () => {
  it('read what parseEntry would from a canonical entry', () => {
    for (const json of [
      {
        storePath: `/nix/store/${h('a')}-x`,
        narHash: `sha256:${'0'.repeat(52)}`,
        narSize: 1,
        references: [],
      },
      {
        storePath: `/nix/store/${h('b')}-y`,
        narHash: `sha256:${'1'.repeat(52)}`,
        narSize: 20,
        references: [`${h('a')}-x`, `${h('c')}-z`],
        deriver: `${h('d')}-y.drv`,
      },
    ]) {
      const { entry } = entryFromJson(json);
      expect(canonicalStorePath(entry)).toBe(json.storePath);
      expect(canonicalReferences(entry)).toEqual(json.references);
      expect(canonicalDeriver(entry)).toBe(json.deriver);
    }
  });
});
