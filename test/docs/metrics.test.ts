/** docs/metrics.md lists every metric the code registers, and names none it does not. */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';

const SRC = new URL('../../src/', import.meta.url).pathname;
const DOC = new URL('../../docs/metrics.md', import.meta.url).pathname;

function* sources(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sources(path);
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) yield path;
  }
}

test('docs/metrics.md lists exactly the metrics the servers register', () => {
  const registered = new Set<string>();
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/\.(?:counter|gauge|histogram)\(\s*'(accord_[a-z_]+)'/g))
      registered.add(m[1] ?? '');
  }
  const documented = new Set(
    [...readFileSync(DOC, 'utf8').matchAll(/^\| `(accord_[a-z_]+)`/gm)].map((m) => m[1] ?? ''),
  );
  expect(registered.size).toBeGreaterThan(10);
  expect([...documented].sort()).toEqual([...registered].sort());
});
