import { describe, expect, test } from 'vitest';
import { MemoryTree, testEntry } from '../../test/support/memory-tree.js';
import {
  SIG_TYPE_ED25519,
  formatVerifierKey,
  hashLeaf,
  newSigner,
  openCheckpoint,
  parseVerifierKey,
  treeHash,
} from '../tlog/index.js';
import { Sequencer } from './sequencer.js';
import { openSqliteLogStorage } from './sqlite-storage.js';

describe('Sequencer', () => {
  const signer = newSigner('seq.example/log', SIG_TYPE_ED25519, new Uint8Array(32).fill(5));
  const key = parseVerifierKey(formatVerifierKey(signer));

  test('rounds of at most maxBatch entries publish checkpoints whose roots match the tree', async () => {
    const storage = openSqliteLogStorage(':memory:');
    const published: number[] = [];
    const sequencer = new Sequencer({
      storage,
      origin: 'seq.example/log',
      signer,
      maxBatch: 300,
      onPublish: (_, size) => published.push(size),
    });
    expect(await sequencer.round()).toBe(0);
    expect(published).toEqual([0]);
    const memory = new MemoryTree();
    for (const n of [1, 255, 1, 700, 44]) {
      const entries = Array.from({ length: n }, (_, k) => {
        const data = testEntry(memory.size + k);
        return { data, leafHash: hashLeaf(data), hashPart: 'x' };
      });
      await storage.addEntries(entries);
      entries.forEach((e) => memory.appendHash(e.leafHash));
      while ((await sequencer.round()) > 0);
      const state = await storage.state();
      expect(state.treeSize).toBe(memory.size);
      const { checkpoint } = openCheckpoint(state.checkpoint ?? '', [key]);
      expect(checkpoint.treeSize).toBe(memory.size);
      expect(Buffer.from(checkpoint.rootHash)).toEqual(
        Buffer.from(await treeHash(memory.size, memory)),
      );
    }
    expect(published).toEqual([0, 1, 256, 257, 557, 857, 957, 1001]);
    expect(await sequencer.round()).toBe(0);
    await storage.close();
  });

  test('with extraSigners every checkpoint a round publishes is signed by each key', async () => {
    const storage = openSqliteLogStorage(':memory:');
    const second = newSigner('seq.example/log', SIG_TYPE_ED25519, new Uint8Array(32).fill(6));
    const sequencer = new Sequencer({
      storage,
      origin: 'seq.example/log',
      signer,
      extraSigners: [second],
    });
    const data = testEntry(1);
    await storage.addEntries([{ data, leafHash: hashLeaf(data), hashPart: 'x' }]);
    expect(await sequencer.round()).toBe(1);
    const note = (await storage.state()).checkpoint ?? '';
    for (const k of [key, parseVerifierKey(formatVerifierKey(second))])
      expect(openCheckpoint(note, [k]).checkpoint.treeSize).toBe(1);
    expect(note.split('\n— seq.example/log ')).toHaveLength(3);
    await storage.close();
  });

  test('start() publishes on its own and stop() waits for the round in progress', async () => {
    const storage = openSqliteLogStorage(':memory:');
    const sequencer = new Sequencer({ storage, origin: 'seq.example/log', signer, intervalMs: 10 });
    sequencer.start();
    const data = testEntry(1);
    await storage.addEntries([{ data, leafHash: hashLeaf(data), hashPart: 'x' }]);
    for (let i = 0; i < 100 && (await storage.state()).treeSize < 1; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await sequencer.stop();
    expect((await storage.state()).treeSize).toBe(1);
    await storage.close();
  });
});
