/** Benchmark harness: times operations for a fixed wall-clock budget and prints a table. */

/** One measured operation: how many per second, and the time of one. */
export interface Rate {
  readonly perSecond: number;
  readonly microseconds: number;
}

/**
 * Runs `op` repeatedly for about `seconds` (after a short warm-up) and returns its rate. `op`
 * may do `batch` units of work per call.
 */
export function measure(op: () => void, seconds = 1, batch = 1): Rate {
  const warmUntil = performance.now() + 100;
  while (performance.now() < warmUntil) op();
  let calls = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 16; i++) op();
    calls += 16;
    now = performance.now();
  }
  const perSecond = (calls * batch * 1000) / (now - start);
  return { perSecond, microseconds: 1e6 / perSecond };
}

/** Async variant of {@link measure}. */
export async function measureAsync(op: () => Promise<void>, seconds = 1, batch = 1): Promise<Rate> {
  let calls = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  let now = start;
  while (now < end) {
    await op();
    calls++;
    now = performance.now();
  }
  const perSecond = (calls * batch * 1000) / (now - start);
  return { perSecond, microseconds: 1e6 / perSecond };
}

/** A result row: what was measured, its value, the baseline beside it, and their ratio. */
export interface Row {
  readonly name: string;
  readonly value: string;
  readonly baseline: string;
  /** value ÷ baseline, where "higher is better" (or its inverse for times, stated in `note`). */
  readonly ratio: string;
  readonly note?: string;
}

export function formatRate(perSecond: number, unit: string): string {
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)} M${unit}/s`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)} k${unit}/s`;
  return `${perSecond.toFixed(1)} ${unit}/s`;
}

export function formatTime(microseconds: number): string {
  return microseconds >= 1000
    ? `${(microseconds / 1000).toFixed(3)} ms`
    : `${microseconds.toFixed(1)} µs`;
}

/** Prints rows as a Markdown table (so it can be pasted into docs/benchmarks.md). */
export function printTable(title: string, rows: readonly Row[]): void {
  const header = ['benchmark', 'Accord', 'baseline (same run)', 'ratio', 'note'];
  const cells = rows.map((r) => [r.name, r.value, r.baseline, r.ratio, r.note ?? '']);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: readonly string[]) =>
    `| ${c.map((x, i) => x.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  process.stdout.write(`\n### ${title}\n\n`);
  process.stdout.write(`${line(header)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n`);
  for (const c of cells) process.stdout.write(`${line(c)}\n`);
}
