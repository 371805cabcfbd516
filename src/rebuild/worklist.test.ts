import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { WorkListError, parseWorkList } from './worklist.js';

const h = 'mmn0yi58md42710kmdc31mms77d6ms72';
const d = 'cdqj5hp9mqwckyvdw6pqilp6xyxs1x40';

describe('parseWorkList()', () => {
  test('reads paths, paths with their derivation, derivations alone; skips comments, blanks and repeats', () => {
    expect(
      parseWorkList(
        `# wanted\n/nix/store/${h}-hello\n\n/nix/store/${h}-hello\n/nix/store/${h}-x /nix/store/${d}-x.drv\n  /nix/store/${d}-y.drv  \n`,
      ),
    ).toEqual([
      { storePath: `/nix/store/${h}-hello` },
      { storePath: `/nix/store/${h}-x`, drv: `/nix/store/${d}-x.drv` },
      { drv: `/nix/store/${d}-y.drv` },
    ]);
  });

  test('refuses anything else, naming the line', () => {
    for (const [text, why] of [
      [`/nix/store/${h}-a /nix/store/${h}-b`, /line 1: .* is not a derivation/],
      [`/nix/store/${d}-a.drv /nix/store/${h}-b`, /line 1: a derivation comes second/],
      [`\n/etc/passwd`, /line 2/],
      [`/nix/store/${h}-a b c`, /line 1: want STORE-PATH/],
      [`/gnu/store/${h}-a`, /line 1/],
    ] as const)
      expect(() => parseWorkList(text), text).toThrow(why);
  });

  test('never throws anything but a WorkListError on any input', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => {
        try {
          parseWorkList(text);
        } catch (error) {
          expect(error).toBeInstanceOf(WorkListError);
        }
      }),
    );
  });
});
