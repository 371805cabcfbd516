/** The path page: every log's claim about one store path, the verdict, demand and what differs. */
import { bytes, count, utc } from './format.js';
import { type Html, html, segment } from './html.js';
import { page, table } from './layout.js';
import type { NarDiff, NarDiffUnavailable, NarEntry, PathModel } from './model.js';

function diffClass(line: string): string {
  return line.startsWith('-') ? 'del' : line.startsWith('+') ? 'ins' : '';
}

function entryText(e: NarEntry | undefined): Html {
  if (e === undefined) return html`<span class="muted">absent</span>`;
  if (e.type === 'directory') return html`directory`;
  if (e.type === 'symlink') return html`symlink → <code>${e.target ?? ''}</code>`;
  return html`${e.executable === true ? 'executable ' : ''}file, ${bytes(e.size ?? 0)}<br /><code
      >sha256:${e.sha256 ?? ''}</code
    >`;
}

function diffSection(diff: NarDiff | NarDiffUnavailable | null): Html {
  if (diff === null) return html``;
  if ('status' in diff) {
    const cls = diff.status === 'failed' ? 'bad' : 'warn';
    return html`<h2>What differs</h2>
      <p id="diff-status"><span class="badge ${cls}">${diff.status}</span> ${diff.reason}</p>`;
  }
  const [a, b] = diff.sides;
  const rows = diff.entries.map(
    (e) =>
      html`<tr data-diff-path="${e.path}">
          <td><code>${e.path === '' ? '(the store path itself)' : e.path}</code></td>
          <td>${entryText(e.a)}</td>
          <td>${entryText(e.b)}</td>
        </tr>
        ${
          e.textDiff === undefined
            ? ''
            : html`<tr>
                <td colspan="3">
                  <pre class="diff">
${e.textDiff.map((line) => html`<span class="${diffClass(line)}">${line}</span>\n`)}</pre>
                </td>
              </tr>`
        }`,
  );
  return html`<h2>What differs</h2>
    <p class="lead">
      The NARs of two answers, fetched from the builders' caches and checked against their claims,
      compared file by file.
    </p>
    <table id="diff">
      <thead>
        <tr>
          <th>entry</th>
          <th><code>${a.log}</code><br /><span class="muted mono">${a.narHash}</span></th>
          <th><code>${b.log}</code><br /><span class="muted mono">${b.narHash}</span></th>
        </tr>
      </thead>
      <tbody>
        ${rows}
      </tbody>
    </table>
    ${diff.truncated ? html`<p class="muted">More entries differ than are listed.</p>` : ''}`;
}

export function pathPage(m: PathModel): string {
  const title = m.storePath ?? m.hashPart;
  const verdictClass =
    m.decision.verdict === 'trusted' ? 'ok' : m.decision.verdict === 'conflict' ? 'bad' : 'warn';
  const answers = m.answers.map(
    (a, i) =>
      html`<tr data-answer="${a.answer}">
        <td>
          ${i + 1}${a.answer === m.majority ? html` <span class="badge ok">majority</span>` : ''}
        </td>
        <td><code>${a.narHash}</code></td>
        <td class="num">${count(a.narSize)}</td>
        <td>
          ${a.references.length === 0 ? html`<span class="muted">none</span>` : a.references.map((r) => html`<code>${r}</code><br />`)}
        </td>
        <td>${a.logs.map((l) => html`<code>${l}</code><br />`)}</td>
      </tr>`,
  );
  const claims = m.claims.map(
    (c) =>
      html`<tr data-claim-log="${c.log}">
        <td><code>${c.log}</code></td>
        <td class="num">${c.index}</td>
        <td class="num">${count(c.treeSize)}</td>
        <td><code>${c.narHash}</code></td>
        <td class="num">${count(c.narSize)}</td>
        <td>
          ${c.deriver === undefined ? html`<span class="muted">—</span>` : html`<code>${c.deriver}</code>`}
        </td>
        <td>
          ${c.inMajority ? html`<span class="badge ok">majority</span>` : m.majority === null ? html`<span class="badge warn">no majority</span>` : html`<span class="badge bad">minority</span>`}
        </td>
        <td>
          <span
            class="badge ok"
            title="the entry hashes into the log's tree the monitor verified against the signed checkpoint"
            >verified</span
          >
        </td>
      </tr>`,
  );
  const demand =
    m.demand === null
      ? html`<p class="muted" id="demand">No proxy has reported requests for this path.</p>`
      : html`<p id="demand">
          Requested <strong>${count(m.demand.requests)}</strong> times through
          ${count(m.demand.reporters)} reporting ${m.demand.reporters === 1 ? 'proxy' : 'proxies'};
          refused <strong>${count(m.demand.refused)}</strong> times.
        </p>`;
  const failures =
    m.failures === null
      ? html`<p class="muted" id="no-failures">No rebuilder has reported a failed build of this path.</p>`
      : html`<p id="failures-summary">
            <strong>${count(m.failures.attempts)}</strong> failed
            ${m.failures.attempts === 1 ? 'attempt' : 'attempts'} by ${count(m.failures.builders)}
            ${m.failures.builders === 1 ? 'rebuilder' : 'rebuilders'}: a failed build is not a claim.
          </p>
          ${table(
            'failures',
            ['', 'when', 'why'],
            m.failures.recent.map(
              (f) =>
                html`<tr data-failure-builder="${f.builder}">
                  <td>rebuild failed at <code>${f.builder}</code></td>
                  <td>${utc(f.at)}</td>
                  <td><code>${f.reason}</code></td>
                </tr>`,
            ),
            html``,
          )}`;
  const findings = m.findings.map(
    (f) => html`<li><a href="/findings/${f.id}">${f.kind} #${f.id}</a>: ${f.summary}</li>`,
  );
  const body = html`<h1><code>${title}</code></h1>
    <div class="verdict ${verdictClass}" id="verdict">
      <strong>${m.decision.verdict}</strong> under <code>${m.decision.rule}</code>:
      ${m.decision.reason}
    </div>
    <p>
      <a href="/closure/${segment(m.hashPart)}">Closure report</a
      >${findings.length === 0 ? '' : html` · ${count(findings.length)} finding(s)`}
    </p>
    ${
      findings.length === 0
        ? ''
        : html`<ul id="path-findings">
            ${findings}
          </ul>`
    }
    <h2>Answers</h2>
    ${table(
      'answers',
      ['#', 'NAR hash', ['NAR size', 'num'], 'references', 'logs'],
      answers,
      html`<p class="muted" id="no-claims">No followed log claims this path.</p>`,
    )}
    ${m.claims.length === 0 ? '' : html`<h2>Claims</h2>`}
    ${table(
      'claims',
      [
        'log',
        ['index', 'num'],
        ['in tree of', 'num'],
        'NAR hash',
        ['NAR size', 'num'],
        'deriver',
        '',
        'proof',
      ],
      claims,
      html``,
    )}
    <h2>Rebuilds that failed</h2>
    ${failures}
    <h2>Demand</h2>
    ${demand} ${diffSection(m.diff)}`;
  return page({
    title,
    section: 'path',
    jsonHref: `/paths/${segment(m.hashPart)}?format=json`,
    body,
    ...(m.diff !== null && 'status' in m.diff && m.diff.status === 'pending'
      ? { refreshSeconds: 2 }
      : {}),
  });
}
