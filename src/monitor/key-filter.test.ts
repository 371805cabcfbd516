import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeyFilter } from './key-filter.js';

describe('KeyFilter', () => {
  it('holds every key added, whatever the keys and size', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 2 ** 48 - 1 }), { maxLength: 300 }),
        (keys) => {
          const filter = new KeyFilter(keys.length);
          for (const k of keys) filter.add(k);
          for (const k of keys) expect(filter.mayHold(k)).toBe(true);
        },
      ),
    );
  });

  it('says "absent" for nearly every key not added (about 1% false positives)', () => {
    const filter = new KeyFilter(10_000);
    const key = (i: number) => (i * 2654435761 * 65537) % 2 ** 48;
    for (let i = 0; i < 10_000; i++) filter.add(key(i));
    let maybe = 0;
    for (let i = 10_000; i < 110_000; i++) if (filter.mayHold(key(i))) maybe++;
    expect(maybe / 100_000).toBeLessThan(0.03);
  });
});
