/** `accord keygen`: a signed-note key for a log (or, with --witness, a witness). */
import { writeFileSync } from 'node:fs';
import {
  SIG_TYPE_COSIGNATURE_V1,
  SIG_TYPE_ED25519,
  generateKey,
  isValidKeyName,
} from '../tlog/index.js';
import { EXIT, UsageError, defineCommand } from './command.js';
import { writeSecretFile } from './keyfile.js';

export const keygenCommand = defineCommand({
  name: 'keygen',
  summary: 'generate a log (or witness) signing key',
  help: `Usage: accord keygen --origin ORIGIN --out FILE [--witness] [--vkey-out FILE]

Writes a C2SP signed-note private key (PRIVATE+KEY+<origin>+<id>+<base64>) to FILE with mode
0600, and prints its verifier key (<origin>+<id>+<base64>) on standard output: give the
verifier key to the proxies, witnesses and monitors that should trust this log.

Options:
  --origin ORIGIN   the log's origin (for example builder1.example.org/log), which is the key
                    name; for a witness, its name
  --out FILE        where to write the private key (must not exist)
  --witness         make a cosignature/v1 key (type 0x04) for a witness instead of a log key
  --vkey-out FILE   also write the verifier key to FILE`,
  options: {
    origin: { type: 'string' },
    out: { type: 'string' },
    witness: { type: 'boolean' },
    'vkey-out': { type: 'string' },
  },
  run(values) {
    const { origin, out } = values;
    if (origin === undefined || out === undefined)
      throw new UsageError('--origin and --out are required');
    if (!isValidKeyName(origin)) {
      throw new UsageError(`--origin ${JSON.stringify(origin)}: no spaces or '+' allowed`);
    }
    const type = values.witness === true ? SIG_TYPE_COSIGNATURE_V1 : SIG_TYPE_ED25519;
    const { signerKey, verifierKey } = generateKey(origin, type);
    writeSecretFile(out, `${signerKey}\n`);
    if (values['vkey-out'] !== undefined) writeFileSync(values['vkey-out'], `${verifierKey}\n`);
    process.stdout.write(`${verifierKey}\n`);
    return Promise.resolve(EXIT.ok);
  },
});
