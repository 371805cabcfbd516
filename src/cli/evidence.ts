/** `accord verify-evidence`: checks fork evidence offline, with the log's public key alone. */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { parsePolicy } from '../policy/index.js';
import {
  MAX_FORK_EVIDENCE_BYTES,
  type NoteVerifier,
  TlogError,
  parseVerifierKey,
  verifyForkEvidence,
} from '../tlog/index.js';
import { EXIT, UsageError, defineCommand } from './command.js';

/** Reads at most `max` bytes of `path` ('-': standard input), refusing anything larger. */
function readCapped(path: string, max: number): string {
  const fd = path === '-' ? 0 : openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(max + 1);
    let size = 0;
    for (;;) {
      const n = readSync(fd, buffer, size, buffer.length - size, null);
      if (n === 0) break;
      size += n;
      if (size > max) throw new Error(`${path}: larger than ${max} bytes: not fork evidence`);
    }
    return buffer.subarray(0, size).toString('utf8');
  } finally {
    if (fd !== 0) closeSync(fd);
  }
}

export const verifyEvidenceCommand = defineCommand({
  name: 'verify-evidence',
  summary: 'check fork evidence offline with the log’s key',
  help: `Usage: accord verify-evidence FILE (--key VKEY ... | --policy FILE) [--json]

Checks that FILE (- for standard input) is fork evidence (accord/fork-evidence/v1, as the
proxy stores when it distrusts a log and the monitor attaches to a fork finding): two
checkpoints signed by the same log that cannot both be true — two roots for one size, or a
consistency proof that leads to the larger root but not to the smaller one. Nothing but the
log's public key is needed; nothing is fetched.

Options:
  --key VKEY      a verifier key of the log (origin+id+base64); may be given more than once
  --policy FILE   take the log keys from an Accord policy file instead
  --json          print the result as JSON

Exit codes: 0 the evidence shows a fork, 1 it does not (it is not evidence), 2 bad usage.`,
  options: {
    key: { type: 'string', multiple: true },
    policy: { type: 'string' },
    json: { type: 'boolean' },
  },
  positionals: { min: 1, max: 1 },
  run(values, [file]) {
    const keyTexts = values.key ?? [];
    if ((keyTexts.length === 0) === (values.policy === undefined))
      throw new UsageError('give the log key with --key VKEY or --policy FILE (one of them)');
    let keys: NoteVerifier[];
    try {
      keys =
        values.policy === undefined
          ? keyTexts.map((k) => parseVerifierKey(k))
          : parsePolicy(readFileSync(values.policy, 'utf8')).logs.map((l) => l.verifier);
    } catch (e) {
      throw new UsageError(
        `${values.policy === undefined ? '--key' : '--policy'}: ${(e as Error).message}`,
      );
    }
    const text = readCapped(file ?? '-', MAX_FORK_EVIDENCE_BYTES);
    try {
      const verified = verifyForkEvidence(text, keys);
      const [a, b] = verified.checkpoints;
      if (values.json === true) {
        process.stdout.write(
          `${JSON.stringify({
            verified: true,
            origin: verified.origin,
            reason: verified.reason,
            sizes: [a.treeSize, b.treeSize],
          })}\n`,
        );
      } else {
        process.stdout.write(
          `fork evidence verified: ${verified.origin} signed checkpoints of sizes ${a.treeSize} and ${b.treeSize} that cannot both be true (${verified.reason})\n`,
        );
      }
      return Promise.resolve(EXIT.ok);
    } catch (e) {
      if (!(e instanceof TlogError)) throw e;
      if (values.json === true)
        process.stdout.write(`${JSON.stringify({ verified: false, reason: e.message })}\n`);
      else process.stderr.write(`accord verify-evidence: not fork evidence: ${e.message}\n`);
      return Promise.resolve(EXIT.failure);
    }
  },
});
