/** docs/identity.md's example statements are a valid chain under the root key it names. */
import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { foldStatements, logKeysAt, parseStatementNote } from '../../src/identity/index.js';
import { parseVerifierKey } from '../../src/tlog/index.js';

const DOC = readFileSync(new URL('../../docs/identity.md', import.meta.url), 'utf8');

test('docs/identity.md: the example notes verify as a chain under the example root key', () => {
  const root = /root\s+key is `([^`]+)`/.exec(DOC)?.[1] ?? '';
  const notes = [...DOC.matchAll(/```\n(accord\/keys\/v1\n[\s\S]*?\n)```/g)]
    .map((m) => m[1] ?? '')
    .filter((n) => n.includes('\n— '));
  expect(notes).toHaveLength(2);
  for (const note of notes) parseStatementNote(note);
  const result = foldStatements(parseVerifierKey(root), notes);
  expect(result.kind).toBe('ok');
  if (result.kind !== 'ok' || result.state === undefined) return;
  expect(result.state.sequence).toBe(1);
  expect(result.ignored).toEqual([]);
  expect(logKeysAt(result.state, 1781000000)).toHaveLength(2);
  expect(logKeysAt(result.state, 1781468800)).toHaveLength(1);
});
