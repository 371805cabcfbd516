/**
 * Nix's `netrc-file` convention: `machine HOST login USER password PASS` entries (and a
 * `default` entry), whitespace-separated, as curl reads them. The credentials an upstream gets
 * come from the entry of its host, else from `default`.
 */

export interface NetrcEntry {
  readonly login: string;
  readonly password: string;
}

/** Parses a netrc file: entries by host (`''` for `default`); throws naming what is wrong. */
export function parseNetrc(text: string): Map<string, NetrcEntry> {
  const entries = new Map<string, NetrcEntry>();
  const lines = text.split('\n');
  const tokens: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (/^\s*macdef\b/.test(line)) {
      // A macro runs to the next empty line; its text is not netrc syntax.
      while (i + 1 < lines.length && (lines[i + 1] ?? '').trim() !== '') i++;
      continue;
    }
    tokens.push(
      ...line
        .replace(/#.*$/, '')
        .split(/\s+/)
        .filter((t) => t !== ''),
    );
  }
  let host: string | undefined;
  let login = '';
  let password = '';
  const finish = () => {
    if (host !== undefined && !entries.has(host)) entries.set(host, { login, password });
  };
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    const value = () => {
      const v = tokens[++i];
      if (v === undefined) throw new Error(`netrc: "${token ?? ''}" without a value`);
      return v;
    };
    if (token === 'machine' || token === 'default') {
      finish();
      host = token === 'default' ? '' : value().toLowerCase();
      login = '';
      password = '';
    } else if (token === 'login') login = value();
    else if (token === 'password') password = value();
    else if (token === 'account') value();
    else throw new Error(`netrc: unexpected "${token ?? ''}"`);
  }
  finish();
  return entries;
}

/** The `Authorization` value for `url`'s host from netrc entries, if there is one. */
export function netrcAuthorization(
  entries: ReadonlyMap<string, NetrcEntry>,
  url: string,
): string | undefined {
  const entry = entries.get(new URL(url).hostname.toLowerCase()) ?? entries.get('');
  if (entry === undefined) return undefined;
  return `Basic ${Buffer.from(`${entry.login}:${entry.password}`).toString('base64')}`;
}
