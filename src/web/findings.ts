/** The findings page: forks, rollbacks, equivocations and disagreements, each with its evidence. */
import { count, utc } from './format.js';
import { html, segment } from './html.js';
import { page, table } from './layout.js';
import type { FindingsModel } from './model.js';

const SEVERE = new Set(['fork', 'log-equivocation', 'bad-entries', 'bad-statement']);

export function findingsPage(m: FindingsModel, kind: string | null): string {
  const rows = m.findings.map(
    (f) =>
      html`<tr data-finding="${f.id}">
        <td class="num">${f.id}</td>
        <td><span class="badge ${SEVERE.has(f.kind) ? 'bad' : 'warn'}">${f.kind}</span></td>
        <td>
          ${f.summary}${f.hashPart === null ? '' : html`<br /><a href="/paths/${segment(f.hashPart)}">the path's claims</a>`}
        </td>
        <td>
          ${utc(f.at)}${f.updated > f.at ? html`<br /><span class="muted">updated ${utc(f.updated)}</span>` : ''}
        </td>
        <td><a href="/findings/${f.id}" download="accord-finding-${f.id}.json">evidence</a></td>
      </tr>`,
  );
  const total =
    kind === null ? Object.values(m.counts).reduce((a, b) => a + b, 0) : (m.counts[kind] ?? 0);
  const shown = m.findings.length;
  const filters = [
    html`<a href="/findings"
      >all (${count(Object.values(m.counts).reduce((a, b) => a + b, 0))})</a
    >`,
    ...Object.entries(m.counts).map(
      ([k, n]) => html` · <a href="/findings?kind=${segment(k)}">${k} (${count(n)})</a>`,
    ),
  ];
  const body = html`<h1>Findings${kind === null ? '' : html`: ${kind}`}</h1>
    <p class="lead">
      Each finding carries evidence anyone can check offline: fork evidence verifies with
      <code>accord verify-evidence</code>, claims come with C2SP tlog-proofs.
    </p>
    <p>${filters}</p>
    ${shown < total ? html`<p class="muted">The newest ${count(shown)} of ${count(total)}; <a href="/findings?format=json">all of them as JSON</a>.</p>` : ''}
    ${table(
      'findings',
      [['id', 'num'], 'kind', 'what', 'when', ''],
      rows,
      html`<p id="no-findings" class="muted">Nothing found${kind === null ? '' : ' of this kind'}: every log shows one history and builders agree on every path claimed twice.</p>`,
    )}`;
  return page({
    title: 'Findings',
    section: 'findings',
    jsonHref:
      kind === null ? '/findings?format=json' : `/findings?kind=${segment(kind)}&format=json`,
    body,
  });
}
