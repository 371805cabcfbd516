import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { escapeHtml, html, raw } from './html.js';
import { findingsPage, pathPage } from './index.js';
import type { PathModel } from './model.js';

describe('html``', () => {
  test('escapes every value put into it, keeps its own markup and nested html', () => {
    const name = '<script>alert(1)</script>&"\'';
    expect(html`<td title="${name}">${name}</td>`.text).toBe(
      '<td title="&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&#39;">&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&#39;</td>',
    );
    expect(
      html`<p>${html`<b>${'x<'}</b>`}${[1, ' & ', raw('<br>')]}${undefined}${false}</p>`.text,
    ).toBe('<p><b>x&lt;</b>1 &amp; <br></p>');
  });

  test('no text put in can open a tag or leave an attribute', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        const escaped = escapeHtml(text);
        expect(html`<a title="${text}">${text}</a>`.text).toBe(
          `<a title="${escaped}">${escaped}</a>`,
        );
        expect(escaped.replace(/&(amp|lt|gt|quot|#39);/g, '')).not.toMatch(/[&<>"']/);
      }),
    );
  });
});

describe('the pages', () => {
  const hostile = '"><img src=x onerror=alert(1)>';
  const model: PathModel = {
    hashPart: '0'.repeat(32),
    agree: false,
    storePath: `/nix/store/${'0'.repeat(32)}-x`,
    claims: [
      {
        log: hostile,
        index: 0,
        treeSize: 1,
        storePath: `/nix/store/${'0'.repeat(32)}-x`,
        narHash: 'sha256:x',
        narSize: 1,
        references: [hostile],
        answer: 'a',
        inMajority: false,
      },
    ],
    answers: [
      { answer: 'a', narHash: 'sha256:x', narSize: 1, references: [hostile], logs: [hostile] },
    ],
    majority: null,
    minority: [],
    decision: { verdict: 'no-quorum', reason: hostile, rule: hostile },
    demand: null,
    failures: { attempts: 1, builders: 1, recent: [{ builder: hostile, at: 0, reason: hostile }] },
    diff: {
      sides: [
        { log: hostile, narHash: 'a', cache: hostile },
        { log: 'b', narHash: 'b', cache: 'b' },
      ],
      entries: [
        { path: hostile, a: { type: 'symlink', target: hostile }, textDiff: [`-${hostile}`] },
      ],
      truncated: false,
    },
    findings: [{ id: 1, kind: 'disagreement', summary: hostile }],
  };

  test('a path page shows names from logs, caches and rebuild reports as text, never as markup', () => {
    const page = pathPage(model);
    expect(page).toContain('rebuild failed at <code>&quot;&gt;&lt;img');
    expect(page).not.toContain('<img');
    expect(page).toContain('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;');
    expect(page).not.toMatch(/<script/i);
  });

  test('the findings page too', () => {
    const page = findingsPage(
      {
        findings: [{ id: 1, kind: hostile, summary: hostile, at: 0, updated: 0, hashPart: null }],
        counts: { [hostile]: 1 },
      },
      hostile,
    );
    expect(page).not.toContain('<img');
  });
});
