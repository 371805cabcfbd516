/**
 * `npm run bench`: runs every benchmark and prints Markdown tables, each result beside a
 * baseline measured in the same run. `--seconds N` sets the time per measurement (default 1).
 */
import { parseArgs } from 'node:util';
import { printTable } from './harness.js';
import { benchTlog } from './tlog.js';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '1' }, help: { type: 'boolean' } },
});
if (values.help === true) {
  process.stdout.write('Usage: npm run bench [-- --seconds N]\n');
  process.exit(0);
}
const seconds = Number(values.seconds);

process.stdout.write(`accord benchmarks — node ${process.version}, ${new Date().toISOString()}\n`);
printTable(
  'tlog (ratios: Accord ÷ baseline; for times, baseline ÷ Accord)',
  await benchTlog(seconds),
);
