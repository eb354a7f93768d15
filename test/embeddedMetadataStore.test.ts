import { cp, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  EmbeddedMetadataStore,
  JOURNAL_FILE,
  MAX_TOPIC_RECORD_BYTES,
  META_DIR,
  MetadataRecordTooLargeError,
  SNAPSHOT_FILE,
} from '../cluster/embeddedMetadataStore.js';
import { MemoryLogger } from '../engine/logger.js';
import type { TopicRecord } from '../engine/metadataStore.js';
import { temporaryDirectory } from './support/logs.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function dataDir(): Promise<string> {
  const dir = await temporaryDirectory('tidelog-meta-');
  cleanups.push(dir.remove);
  return dir.path;
}

async function openStore(dir: string, options: { compactJournalBytes?: number } = {}): Promise<{ store: EmbeddedMetadataStore; logger: MemoryLogger }> {
  const logger = new MemoryLogger();
  const store = await EmbeddedMetadataStore.open({ dataDir: dir, logger, ...options });
  cleanups.push(() => store.close());
  return { store, logger };
}

function topic(name: string, partitions = 3, configs: Record<string, string> = {}): TopicRecord {
  return { name, topicId: `00000000-0000-4000-8000-${name.padStart(12, '0').slice(-12)}`, partitions, configs, createdAtMs: 1_700_000_000_123 };
}

function sortedTopics(topics: TopicRecord[]): TopicRecord[] {
  return [...topics].sort((a, b) => a.name.localeCompare(b.name));
}

/** Byte offsets where each journal record starts, and the file's end. */
async function journalRecordStarts(dir: string): Promise<number[]> {
  const bytes = await readFile(join(dir, META_DIR, JOURNAL_FILE));
  const starts: number[] = [];
  let position = 0;
  while (position < bytes.length) {
    starts.push(position);
    position += 8 + bytes.readUInt32BE(position);
  }
  expect(position).toBe(bytes.length);
  return [...starts, bytes.length];
}

/** A copy of the store's files as they are on disk now (the store stays open): a crash image. */
async function crashImage(dir: string): Promise<string> {
  const copy = await dataDir();
  await cp(join(dir, META_DIR), join(copy, META_DIR), { recursive: true });
  return copy;
}

describe('EmbeddedMetadataStore', () => {
  it('keeps topics, deletions and the producer-id allocation across a close and reopen', async () => {
    const dir = await dataDir();
    const { store } = await openStore(dir);
    await store.putTopic(topic('orders', 3, { 'retention.ms': '1000' }));
    await store.putTopic(topic('audit', 1));
    await store.putTopic(topic('orders', 6, { 'cleanup.policy': 'compact' }));
    await store.putTopic(topic('scratch', 1));
    await store.deleteTopic('scratch');
    await store.deleteTopic('never-existed');
    expect(await store.reserveProducerIds(1000)).toEqual({ first: 0, last: 999 });
    expect(await store.reserveProducerIds(10)).toEqual({ first: 1000, last: 1009 });
    await store.close();

    const { store: reopened } = await openStore(dir);
    const state = await reopened.load();
    expect(sortedTopics(state.topics)).toEqual([topic('audit', 1), topic('orders', 6, { 'cleanup.policy': 'compact' })]);
    expect(state.nextProducerId).toBe(1010);
    expect(await reopened.reserveProducerIds(5)).toEqual({ first: 1010, last: 1014 });
  });

  it('makes every change durable before it resolves: a crash image taken right after holds it', async () => {
    const dir = await dataDir();
    const { store } = await openStore(dir);
    await store.putTopic(topic('orders'));
    await store.reserveProducerIds(100);
    const { store: recovered } = await openStore(await crashImage(dir));
    expect(await recovered.load()).toEqual({ topics: [topic('orders')], nextProducerId: 100 });
  });

  it('loads the previous state when the last journal entry is torn at any byte, and truncates the tail', async () => {
    const dir = await dataDir();
    const { store } = await openStore(dir);
    await store.putTopic(topic('orders'));
    await store.reserveProducerIds(50);
    const before = await store.load();
    await store.putTopic(topic('payments', 12, { 'min.insync.replicas': '1' }));
    await store.close();
    const starts = await journalRecordStarts(dir);
    const lastStart = starts[starts.length - 2]!;
    const end = starts[starts.length - 1]!;

    for (let cut = lastStart; cut < end; cut++) {
      const image = await crashImage(dir);
      await truncate(join(image, META_DIR, JOURNAL_FILE), cut);
      const { store: recovered, logger } = await openStore(image);
      expect(await recovered.load(), `cut at ${cut}`).toEqual(before);
      expect((await stat(join(image, META_DIR, JOURNAL_FILE))).size, `cut at ${cut}`).toBe(lastStart);
      const dropped = logger.lines.filter((line) => line.message.includes('torn or corrupt'));
      expect(dropped, `cut at ${cut}`).toHaveLength(cut === lastStart ? 0 : 1);
      if (cut > lastStart) expect(dropped[0]!.fields).toMatchObject({ position: lastStart, droppedBytes: cut - lastStart });
      // Writing after the truncation continues the journal cleanly.
      await recovered.putTopic(topic('after', 2));
      await recovered.close();
      const { store: again } = await openStore(image);
      expect(sortedTopics((await again.load()).topics).map((t) => t.name)).toEqual(['after', 'orders']);
    }
  });

  it('detects a corrupt entry (a flipped payload byte), drops it and what follows, and logs it', async () => {
    const dir = await dataDir();
    const { store } = await openStore(dir);
    await store.putTopic(topic('first'));
    await store.putTopic(topic('second'));
    await store.putTopic(topic('third'));
    await store.close();
    const starts = await journalRecordStarts(dir);
    const journalPath = join(dir, META_DIR, JOURNAL_FILE);
    const bytes = await readFile(journalPath);
    const flipAt = starts[1]! + 8 + 5;
    bytes[flipAt] = bytes[flipAt]! ^ 0x40;
    await writeFile(journalPath, bytes);

    const { store: recovered, logger } = await openStore(dir);
    expect((await recovered.load()).topics).toEqual([topic('first')]);
    const warning = logger.lines.find((line) => line.level === 'warn' && line.message.includes('torn or corrupt'));
    expect(warning?.fields).toMatchObject({ reason: 'crc mismatch', position: starts[1], droppedBytes: bytes.length - starts[1]!, entriesKept: 1 });
    expect((await stat(journalPath)).size).toBe(starts[1]);
  });

  it('compacts the journal into a snapshot past its size bound and keeps the state', async () => {
    const dir = await dataDir();
    const compactJournalBytes = 70 * 1024;
    const { store, logger } = await openStore(dir, { compactJournalBytes });
    const bigConfig = { 'message.format.version': 'x'.repeat(8000) };
    for (let index = 0; index < 30; index++) await store.putTopic(topic(`topic-${index}`, 1 + (index % 4), index % 3 === 0 ? bigConfig : {}));
    for (let index = 0; index < 30; index += 2) await store.deleteTopic(`topic-${index}`);
    const ids = await store.reserveProducerIds(1000);
    const expected = await store.load();

    expect(logger.lines.some((line) => line.message === 'metadata journal compacted')).toBe(true);
    expect(store.journalSizeBytes).toBeLessThanOrEqual(compactJournalBytes);
    expect((await stat(join(dir, META_DIR, SNAPSHOT_FILE))).size).toBeGreaterThan(0);
    expect(ids.last).toBe(expected.nextProducerId - 1);
    await store.close();

    const { store: reopened } = await openStore(dir, { compactJournalBytes });
    const state = await reopened.load();
    expect(sortedTopics(state.topics)).toEqual(sortedTopics(expected.topics));
    expect(state.topics).toHaveLength(15);
    expect(state.nextProducerId).toBe(expected.nextProducerId);
  });

  it('skips journal entries a snapshot already holds (a crash between snapshot and journal reset)', async () => {
    const dir = await dataDir();
    const { store, logger: firstLogger } = await openStore(dir, { compactJournalBytes: 70 * 1024 });
    await store.putTopic(topic('a'));
    await store.putTopic(topic('b'));
    const oldJournal = await readFile(join(dir, META_DIR, JOURNAL_FILE));
    // Force a compaction with one large record, then put the pre-compaction journal back, as if
    // the crash came after the snapshot rename and before the journal was emptied.
    await store.putTopic(topic('c', 1, { big: 'y'.repeat(MAX_TOPIC_RECORD_BYTES - 1024) }));
    await store.putTopic(topic('d', 1, { big: 'y'.repeat(MAX_TOPIC_RECORD_BYTES - 1024) }));
    expect(firstLogger.lines.some((line) => line.message === 'metadata journal compacted')).toBe(true);
    await store.deleteTopic('c');
    await store.deleteTopic('d');
    const expected = await store.load();
    await store.close();
    expect(expected.topics.map((t) => t.name).sort()).toEqual(['a', 'b']);
    const journalPath = join(dir, META_DIR, JOURNAL_FILE);
    const current = await readFile(journalPath);
    await writeFile(journalPath, Buffer.concat([oldJournal, current]));

    const { store: reopened, logger } = await openStore(dir);
    expect(sortedTopics((await reopened.load()).topics)).toEqual(sortedTopics(expected.topics));
    expect(logger.lines.some((line) => line.level === 'warn')).toBe(false);
  });

  it('never hands out a producer id twice across reopens, crashes and torn reservations', async () => {
    let dir = await dataDir();
    const handedOut: Array<{ first: number; last: number }> = [];
    let current = (await openStore(dir)).store;
    for (let round = 0; round < 6; round++) {
      handedOut.push(await current.reserveProducerIds(1000));
      handedOut.push(await current.reserveProducerIds(1 + round));
      if (round % 2 === 0) {
        await current.close();
      } else {
        // Crash: carry on from what is on disk, without closing.
        dir = await crashImage(dir);
      }
      current = (await openStore(dir)).store;
    }
    handedOut.push(await current.reserveProducerIds(7));
    const sorted = [...handedOut].sort((a, b) => a.first - b.first);
    for (let index = 1; index < sorted.length; index++) expect(sorted[index]!.first).toBeGreaterThan(sorted[index - 1]!.last);
    expect(sorted[0]!.first).toBe(0);
  });

  it('refuses a topic record over the size limit with a typed error and writes nothing', async () => {
    const dir = await dataDir();
    const { store } = await openStore(dir);
    await store.putTopic(topic('small'));
    const sizeBefore = store.journalSizeBytes;
    const huge = topic('huge', 1, { big: 'z'.repeat(MAX_TOPIC_RECORD_BYTES) });
    const refusal = store.putTopic(huge);
    await expect(refusal).rejects.toBeInstanceOf(MetadataRecordTooLargeError);
    await expect(refusal).rejects.toMatchObject({ topic: 'huge', limitBytes: MAX_TOPIC_RECORD_BYTES });
    expect(store.journalSizeBytes).toBe(sizeBefore);
    expect((await store.load()).topics.map((t) => t.name)).toEqual(['small']);
  });

  it('refuses a second open of the same directory while the first is open', async () => {
    const dir = await dataDir();
    const { store } = await openStore(dir);
    await expect(EmbeddedMetadataStore.open({ dataDir: dir, logger: new MemoryLogger() })).rejects.toMatchObject({ name: 'MetadataStoreError', reason: 'locked' });
    await store.close();
    const { store: again } = await openStore(dir);
    await again.close();
  });

  it('refuses changes after close', async () => {
    const dir = await dataDir();
    const { store } = await openStore(dir);
    await store.close();
    await expect(store.putTopic(topic('late'))).rejects.toMatchObject({ name: 'MetadataStoreError', reason: 'closed' });
  });
});
