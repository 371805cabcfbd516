/** A progress line on standard error: redrawn in place on a terminal, else every 5 seconds. */

export interface Progress {
  update(done: number, detail?: string): void;
  finish(detail?: string): void;
  /** Prints a line above the bar (on a terminal) or among the updates. */
  note(text: string): void;
}

/** A time left in seconds as "2h05m", "3m10s" or "12s". */
function eta(seconds: number): string {
  const s = Math.round(seconds);
  if (s >= 3600)
    return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

/** Shows `label done/total (rate/s) detail`; silent when `quiet`. */
export function progressBar(label: string, total: number, quiet = false): Progress {
  const tty = process.stderr.isTTY;
  const start = performance.now();
  let lastDraw = 0;
  const render = (done: number, detail: string) => {
    const seconds = (performance.now() - start) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const width = 30;
    const filled = total > 0 ? Math.min(width, Math.round((done / total) * width)) : width;
    const bar = `[${'='.repeat(filled)}${' '.repeat(width - filled)}]`;
    const speed = rate >= 1 ? `${Math.round(rate)}/s` : `${eta(seconds / Math.max(done, 1))} each`;
    const left = done > 0 && done < total ? `, ETA ${eta((total - done) / rate)}` : '';
    return `${label} ${bar} ${done}/${total} (${speed}${left})${detail === '' ? '' : ` ${detail}`}`;
  };
  return {
    update(done, detail = '') {
      if (quiet) return;
      const now = performance.now();
      if (now - lastDraw < (tty ? 100 : 5000)) return;
      lastDraw = now;
      process.stderr.write(tty ? `\r\x1b[K${render(done, detail)}` : `${render(done, detail)}\n`);
    },
    note(text) {
      if (quiet) return;
      process.stderr.write(`${tty ? '\r\x1b[K' : ''}${text}\n`);
      lastDraw = 0;
    },
    finish(detail = '') {
      if (quiet) return;
      process.stderr.write(`${tty ? '\r\x1b[K' : ''}${render(total, detail)}\n`);
    },
  };
}
