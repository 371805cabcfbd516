import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { isLoopback } from './client-address.js';

describe('isLoopback()', () => {
  test('127.0.0.0/8, ::1 and IPv4-mapped 127.x are loopback', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '127.255.255.255', '::1', '::ffff:127.0.0.1'])
      expect(isLoopback(a), a).toBe(true);
    expect(isLoopback('::FFFF:127.0.0.9')).toBe(true);
  });

  test('every other address is not', () => {
    for (const a of [
      '192.0.2.2',
      '10.0.0.1',
      '128.0.0.1',
      '126.255.255.255',
      '0.0.0.0',
      '::',
      'fd00::2',
      'fe80::1',
      '::ffff:192.0.2.2',
      '::ffff:7f00:1', // not the dotted form a socket reports; and not treated as loopback
      '::127.0.0.1',
      '1:27::',
    ])
      expect(isLoopback(a), a).toBe(false);
  });

  test('an unknown address (a closed socket) gets the default, plain NARs', () => {
    expect(isLoopback(undefined)).toBe(true);
  });

  test('an IPv4 address is loopback exactly when its first octet is 127 (property)', () => {
    fc.assert(
      fc.property(fc.ipV4(), (a) => {
        expect(isLoopback(a)).toBe(a.split('.')[0] === '127');
        expect(isLoopback(`::ffff:${a}`)).toBe(a.split('.')[0] === '127');
      }),
    );
  });
});
