import { describe, expect, test } from 'vitest';
import { netrcAuthorization, parseNetrc } from './netrc.js';

describe('netrc', () => {
  const text = `# comments are skipped
machine cache.example.org login alice password s3cret
machine OTHER.example
  login bob
  password hunter2
macdef init
machine not.an.entry login x password y

default login anon password guest
`;
  test('reads machine and default entries, skipping comments and macros', () => {
    const entries = parseNetrc(text);
    expect([...entries.keys()]).toEqual(['cache.example.org', 'other.example', '']);
    expect(entries.get('other.example')).toEqual({ login: 'bob', password: 'hunter2' });
  });

  test('the Authorization of a URL is its host’s entry, else the default', () => {
    const entries = parseNetrc(text);
    const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;
    expect(netrcAuthorization(entries, 'https://cache.example.org:8443/x')).toBe(
      basic('alice:s3cret'),
    );
    expect(netrcAuthorization(entries, 'https://Other.Example/')).toBe(basic('bob:hunter2'));
    expect(netrcAuthorization(entries, 'https://elsewhere.example/')).toBe(basic('anon:guest'));
    expect(
      netrcAuthorization(parseNetrc('machine a login b password c\n'), 'https://z/'),
    ).toBeUndefined();
  });

  test('a keyword without its value or an unknown word is an error naming it', () => {
    expect(() => parseNetrc('machine')).toThrow(/"machine" without a value/);
    expect(() => parseNetrc('machine a lgin b')).toThrow(/unexpected "lgin"/);
  });
});
