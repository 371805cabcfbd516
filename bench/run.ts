/**
 * `npm run bench`: runs every benchmark and prints Markdown tables, each result beside a
 * baseline measured in the same run. `--seconds N` sets the time per measurement (default 1).
 */
import { parseArgs } from 'node:util';
import { printTable } from './harness.js';
import { benchNar } from './nar.js';
import { benchTlog } from './tlog.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '1' },
    quick: { type: 'boolean' },
    only: { type: 'string' },
    help: { type: 'boolean' },
  },
});
if (values.help === true) {
  process.stdout.write(`Usage: npm run bench [-- --seconds N] [--quick] [--only tlog|nar]

  --seconds N   time per rate measurement (default 1)
  --quick       skip the 1 GB inputs
  --only NAME   run one group of benchmarks
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
if (run('nar')) {
  const sizes = values.quick === true ? [100e6] : [100e6, 1000e6];
  printTable('NAR (ratio: sha256sum time ÷ Accord time)', benchNar(sizes));
}
