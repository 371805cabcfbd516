/**
 * Getting cosignatures: before publishing a checkpoint, the sequencer sends it to every
 * configured witness (C2SP tlog-witness add-checkpoint) with a consistency proof from the size
 * that witness last cosigned, and publishes the checkpoint with the cosignatures that verify.
 */
import http from 'node:http';
import https from 'node:https';
import type { Logger } from '../server/index.js';
import {
  type HashReader,
  type NoteVerifier,
  formatAddCheckpoint,
  openNote,
  parseDecimal,
  proveConsistency,
} from '../tlog/index.js';

/** A witness the log asks to cosign. */
export interface WitnessEndpoint {
  /** The witness's submission prefix (add-checkpoint is below it). */
  readonly url: string;
  /** Its cosignature/v1 key, to check what it returns. */
  readonly verifier: NoteVerifier;
}

function post(
  url: string,
  body: string,
  timeoutMs: number,
): Promise<{ status: number; text: string; type: string }> {
  return new Promise((resolve, reject) => {
    const req = (url.startsWith('https:') ? https : http).request(
      url,
      {
        method: 'POST',
        headers: { 'Content-Type': 'text/plain; charset=utf-8' },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > 64 * 1024) req.destroy(new Error('witness answer too large'));
          else chunks.push(c);
        });
        res.on('end', () => {
          resolve({
            status: res.statusCode ?? 0,
            text: Buffer.concat(chunks).toString('utf8'),
            type: res.headers['content-type'] ?? '',
          });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Asks witnesses for cosignatures, remembering the size each last cosigned. */
export class WitnessClient {
  private readonly known = new Map<string, number>();

  constructor(
    private readonly witnesses: readonly WitnessEndpoint[],
    private readonly logger: Logger,
    private readonly timeoutMs = 3000,
  ) {}

  get size(): number {
    return this.witnesses.length;
  }

  private async cosign(
    w: WitnessEndpoint,
    note: string,
    treeSize: number,
    hashes: HashReader,
  ): Promise<string | undefined> {
    const url = `${w.url.replace(/\/+$/, '')}/add-checkpoint`;
    let oldSize = Math.min(this.known.get(w.url) ?? 0, treeSize);
    for (let attempt = 0; attempt < 2; attempt++) {
      const consistencyProof =
        oldSize === 0 || oldSize === treeSize
          ? []
          : await proveConsistency(oldSize, treeSize, hashes);
      const res = await post(
        url,
        formatAddCheckpoint({ oldSize, consistencyProof, checkpoint: note }),
        this.timeoutMs,
      );
      if (res.status === 409 && res.type.startsWith('text/x.tlog.size')) {
        const size = parseDecimal(res.text.trim(), 'witness size');
        if (size > treeSize) {
          this.logger.error('witness has cosigned a larger tree than this log has', {
            witness: w.url,
            size,
            treeSize,
          });
          return undefined;
        }
        oldSize = size;
        continue;
      }
      if (res.status !== 200) {
        this.logger.warn('witness refused the checkpoint', {
          witness: w.url,
          status: res.status,
          reason: res.text.trim(),
        });
        return undefined;
      }
      // Keep only lines that are valid cosignatures by this witness's key.
      const lines = res.text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => `${l}\n`);
      const text = note.slice(0, note.lastIndexOf('\n\n') + 1);
      const good = lines.filter((line) => {
        try {
          return openNote(`${text}\n${line}`, [w.verifier]).verified.length === 1;
        } catch {
          return false;
        }
      });
      this.known.set(w.url, treeSize);
      return good.join('');
    }
    return undefined;
  }

  /**
   * The cosignature lines the witnesses return for `note` (the checkpoint of a tree of
   * `treeSize` whose hashes `hashes` reads). Witnesses that fail are skipped, logged.
   */
  async cosignatures(note: string, treeSize: number, hashes: HashReader): Promise<string> {
    const lines = await Promise.all(
      this.witnesses.map((w) =>
        this.cosign(w, note, treeSize, hashes).catch((error: unknown) => {
          this.logger.warn('witness unreachable', { witness: w.url, error });
          return undefined;
        }),
      ),
    );
    return lines.filter((l) => l !== undefined).join('');
  }
}
