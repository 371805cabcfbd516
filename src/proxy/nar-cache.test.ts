import { describe, expect, test } from 'vitest';
import { NarCache } from './nar-cache.js';

describe('NarCache', () => {
  test('keeps NARs within the budget, dropping the least recently used first', () => {
    const cache = new NarCache(1600); // entries up to 100 bytes
    for (let i = 0; i < 16; i++) cache.put(`h${i}`, Buffer.alloc(100, i));
    expect(cache.bytes).toBe(1600);
    expect(cache.get('h0')?.[0]).toBe(0); // h0 is now the most recently used
    cache.put('h16', Buffer.alloc(100, 16));
    expect(cache.bytes).toBe(1600);
    expect(cache.get('h1')).toBeUndefined();
    expect(cache.get('h0')).toBeDefined();
    expect(cache.get('h16')?.[0]).toBe(16);
  });

  test('refuses NARs larger than a sixteenth of the budget, and everything at budget 0', () => {
    const cache = new NarCache(1600);
    expect(cache.accepts(100)).toBe(true);
    expect(cache.accepts(101)).toBe(false);
    cache.put('big', Buffer.alloc(101));
    expect(cache.get('big')).toBeUndefined();
    expect(cache.bytes).toBe(0);
    const none = new NarCache(0);
    expect(none.accepts(1)).toBe(false);
    none.put('x', Buffer.alloc(1));
    expect(none.get('x')).toBeUndefined();
  });

  test('a second copy under the same hash changes nothing', () => {
    const cache = new NarCache(1600);
    cache.put('h', Buffer.from('first'));
    cache.put('h', Buffer.from('other'));
    expect(cache.get('h')?.toString()).toBe('first');
    expect(cache.bytes).toBe(5);
  });
});
