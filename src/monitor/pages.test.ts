import { describe, expect, test } from 'vitest';
import { hashPartFromInput } from './pages.js';

describe('hashPartFromInput()', () => {
  const h = 'mmn0yi58md42710kmdc31mms77d6ms72';
  test('takes a hash part, a base name, a store path or a path below one', () => {
    for (const input of [
      h,
      `${h}-demo`,
      `/nix/store/${h}-demo`,
      `/nix/store/${h}-demo/bin/x`,
      ` ${h}\n`,
    ])
      expect(hashPartFromInput(input), input).toBe(h);
  });
  test('refuses anything else, naming what it wants', () => {
    for (const input of [
      '',
      'x',
      `${h}x`,
      `${h.slice(0, 31)}e`,
      '/etc/passwd',
      `/nix/store/${h}`.slice(0, 20),
    ])
      expect(() => hashPartFromInput(input), input).toThrow(
        /store path or its 32-character hash part/,
      );
  });
});
