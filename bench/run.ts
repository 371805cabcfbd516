/**
 * `npm run bench`: runs every benchmark and prints Markdown tables, each result beside a
 * baseline measured in the same run. `--seconds N` sets the time per measurement (default 1).
 */
import { parseArgs } from 'node:util';
import { benchAudit } from './audit.js';
import { benchDecoders } from './decompress.js';
import { printTable } from './harness.js';
import { benchLog } from './log.js';
import { benchMonitor } from './monitor.js';
import { benchMonitorIndex } from './monitor-index.js';
import { benchNar } from './nar.js';
import { have } from './processes.js';
import { benchProxy, benchProxyZstd } from './proxy.js';
import { benchRebuild } from './rebuild.js';
import { benchTlog } from './tlog.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '1' },
    quick: { type: 'boolean' },
    only: { type: 'string' },
    postgres: { type: 'string' },
    help: { type: 'boolean' },
  },
});
if (values.help === true) {
  process.stdout
    .write(`Usage: npm run bench [-- --seconds N] [--quick] [--only tlog|nar|log|proxy|proxy-zstd|decoders|monitor|rebuild|audit]

  --seconds N     time per rate measurement (default 1; the log load runs 10× longer)
  --quick         skip the 1 GB inputs and the Nix closure; a 200,000-entry monitored log
                  and claim index (else 1,000,000, and the index also at 10,000,000)
  --only NAME     run one group of benchmarks (tlog, nar, log, proxy, decoders, monitor,
                  rebuild, audit), or proxy-zstd: only the serve-zstd row of the proxy group
  --postgres URL  also benchmark the log on this PostgreSQL database (default
                  $ACCORD_BENCH_PG_URL, else the test database if it answers)
`);
  process.exit(0);
}
const seconds = Number(values.seconds);
const run = (name: string) => values.only === undefined || values.only === name;

process.stdout.write(`accord benchmarks — node ${process.version}, ${new Date().toISOString()}\n`);
if (run('tlog')) {
  const title = 'tlog (ratios: Accord ÷ baseline; for times, baseline ÷ Accord)';
  printTable(title, await benchTlog(seconds));
}
if (run('log')) {
  const pg =
    values.postgres ??
    process.env.ACCORD_BENCH_PG_URL ??
    'postgres://accord:accord@127.0.0.1:5432/accord_test';
  printTable('log (ratio: Accord ÷ baseline)', await benchLog(seconds * 10, await reachable(pg)));
}
if (run('proxy')) {
  const withNix = values.quick !== true && have('nix-store');
  printTable('proxy (ratios: Accord ÷ baseline; for times, baseline ÷ Accord)', [
    ...(await benchProxy(seconds * 5, withNix)),
    ...(await benchProxyZstd()),
  ]);
}
if (values.only === 'proxy-zstd') printTable('proxy serve-zstd', await benchProxyZstd());
if (run('decoders')) {
  const { decompress } = await import('../src/nix/index.js');
  printTable(
    "proxy NAR decoders against bombs (the event loop's longest block), honest 64 MiB NARs",
    await benchDecoders(decompress),
  );
}
if (run('monitor')) {
  const size = values.quick === true ? 200_000 : 1_000_000;
  printTable('monitor (ratio: Accord ÷ baseline)', await benchMonitor(size));
  const indexSizes = values.quick === true ? [200_000] : [1_000_000, 10_000_000];
  printTable('monitor claim index alone', await benchMonitorIndex(indexSizes));
}
if (run('rebuild') && have('nix-store')) {
  printTable(
    'rebuild (ratio: nix-store --realise time ÷ accord rebuild time)',
    await benchRebuild(values.quick === true ? 4 : 10, 1, values.quick === true ? 1 : 3),
  );
}
if (run('audit') && have('nix-store')) {
  printTable(
    'audit (ratio: nix-store --verify time ÷ accord audit time)',
    await benchAudit(values.quick === true ? 1000 : 10_000),
  );
}
if (run('nar')) {
  const sizes = values.quick === true ? [100e6] : [100e6, 1000e6];
  printTable('NAR (ratio: sha256sum time ÷ Accord time)', benchNar(sizes));
}

/** The URL if a PostgreSQL server answers there, else undefined (the PostgreSQL run is skipped). */
async function reachable(url: string): Promise<string | undefined> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    return url;
  } catch {
    process.stdout.write(`(no PostgreSQL at ${url}: skipping the PostgreSQL log benchmark)\n`);
    return undefined;
  } finally {
    await client.end().catch(() => undefined);
  }
}
