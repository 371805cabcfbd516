import { describe, expect, test } from 'vitest';
import { confineNarUrl } from './nar-url.js';

describe('confineNarUrl()', () => {
  test('keeps a NAR URL on its cache: same scheme, host and port, no credentials', () => {
    const cache = 'https://cache.example:8443/sub';
    expect(confineNarUrl(cache, 'nar/abc.nar.xz')).toBe(
      'https://cache.example:8443/sub/nar/abc.nar.xz',
    );
    expect(confineNarUrl(cache, '/elsewhere/abc.nar')).toBe(
      'https://cache.example:8443/elsewhere/abc.nar',
    );
    for (const [url, why] of [
      ['https://other.example:8443/nar/x', /another host or port/],
      ['https://cache.example/nar/x', /another host or port/],
      ['https://cache.example:9000/nar/x', /another host or port/],
      ['http://cache.example:8443/nar/x', /leaves https:/],
      ['file:///etc/passwd', /leaves https:/],
      ['https://u:p@cache.example:8443/nar/x', /credentials/],
      ['//other.example/nar/x', /another host or port/],
      ['https://[::1', /not a URL/],
    ] as const) {
      expect(() => confineNarUrl(cache, url), url).toThrow(why);
    }
  });

  test("keeps a file:// cache's NAR URLs inside its directory", () => {
    const cache = 'file:///srv/cache';
    expect(confineNarUrl(cache, 'nar/x.nar')).toBe('file:///srv/cache/nar/x.nar');
    for (const url of [
      '../../etc/passwd',
      'nar/../../secret',
      '%2e%2e/%2e%2e/etc/passwd',
      '/etc/passwd',
      'file:///srv/cache-other/x',
      'file://host/srv/cache/x',
    ]) {
      expect(() => confineNarUrl(cache, url), url).toThrow(
        /outside the cache's directory|another host/,
      );
    }
  });
});
