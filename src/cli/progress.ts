/** A progress line on standard error: redrawn in place on a terminal, else every 5 seconds. */

export interface Progress {
  update(done: number, detail?: string): void;
  finish(detail?: string): void;
}

/** Shows `label done/total (rate/s) detail`; silent when `quiet`. */
export function progressBar(label: string, total: number, quiet = false): Progress {
  const tty = process.stderr.isTTY;
  const start = performance.now();
  let lastDraw = 0;
  const render = (done: number, detail: string) => {
    const seconds = (performance.now() - start) / 1000;
    const rate = seconds > 0 ? Math.round(done / seconds) : 0;
    const width = 30;
    const filled = total > 0 ? Math.min(width, Math.round((done / total) * width)) : width;
    const bar = `[${'='.repeat(filled)}${' '.repeat(width - filled)}]`;
    return `${label} ${bar} ${done}/${total} (${rate}/s)${detail === '' ? '' : ` ${detail}`}`;
  };
  return {
    update(done, detail = '') {
      if (quiet) return;
      const now = performance.now();
      if (now - lastDraw < (tty ? 100 : 5000)) return;
      lastDraw = now;
      process.stderr.write(tty ? `\r\x1b[K${render(done, detail)}` : `${render(done, detail)}\n`);
    },
    finish(detail = '') {
      if (quiet) return;
      process.stderr.write(`${tty ? '\r\x1b[K' : ''}${render(total, detail)}\n`);
    },
  };
}
