// The embedded metadata store of a single node: topics and the producer-id allocation, kept in
// `<dataDir>/meta/`.
//
// Files
//   meta/snapshot        one record (layout below) whose payload is the whole state:
//                        msgpackr { version: 1, lastSeq, nextProducerId, topics: TopicRecord[] }
//   meta/snapshot.tmp    a snapshot being written; removed at open (the old snapshot still stands)
//   meta/.lock           pid of the process that has the store open (text)
//   meta/journal         records back to back, one per change since the snapshot; payload is
//                        msgpackr { seq, op: 'putTopic', topic } | { seq, op: 'deleteTopic', name }
//                                | { seq, op: 'producerIds', nextProducerId }
//
// Record layout (snapshot and journal alike)
//   offset 0  u32 BE  payload length (> 0)
//   offset 4  u32 BE  CRC-32C of the payload
//   offset 8  payload (msgpackr)
//
// Rules
//   - A change is appended to the journal and fsynced before its promise resolves; memory changes
//     only after that. A failed write cuts the journal back; a failed fsync stops the store
//     (the page cache cannot be trusted after it) until a restart replays the journal.
//   - `seq` numbers journal records 1, 2, 3... across the store's life; the snapshot keeps the last
//     one it contains, so records at or below it are skipped (a crash between writing a snapshot
//     and emptying the journal leaves such records behind, harmlessly).
//   - Open replays the journal over the snapshot and stops at the first torn or corrupt record
//     (short, bad length, CRC mismatch, undecodable, out of sequence), truncates the journal there
//     and logs what was dropped. A corrupt snapshot is not guessed around: open fails.
//   - Past `compactJournalBytes` the state is written as a new snapshot (tmp, fsync, rename, fsync
//     dir) and the journal is emptied.
//   - Producer ids are reserved by durable blocks: `nextProducerId` is journaled before a block is
//     handed out, so a restart never hands out an id again.
import { DirectoryLockedError, lockDirectory } from '../engine/log/directoryLock.js';
import { constants } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { pack, unpack } from 'msgpackr';
import type { Logger } from '../engine/logger.js';
import type { MetadataSnapshot, MetadataStore, TopicRecord } from '../engine/metadataStore.js';
import { fsyncDirectory } from '../segments/checkpointFile.js';
import { crc32c } from '../segments/crc32c.js';

export const META_DIR = 'meta';
export const SNAPSHOT_FILE = 'snapshot';
export const JOURNAL_FILE = 'journal';
const TEMPORARY_SUFFIX = '.tmp';
const RECORD_HEADER_BYTES = 8;
const SNAPSHOT_VERSION = 1;

/** A topic record (name, id, partition count, config overrides) encodes to at most this. */
export const MAX_TOPIC_RECORD_BYTES = 64 * 1024;
/** The largest journal record: a topic record plus the entry's own fields. */
const MAX_JOURNAL_RECORD_BYTES = MAX_TOPIC_RECORD_BYTES + 1024;
export const MAX_TOPICS = 100_000;
/** MAX_TOPICS records at their largest, with room for the rest; a bigger file is refused at open. */
const MAX_SNAPSHOT_BYTES = 1024 * 1024 * 1024;
/** The most producer ids one reserveProducerIds call may take (Kafka's blocks are 1000). */
export const MAX_PRODUCER_ID_BLOCK = 1_000_000;
/** Changes queued behind the one being written; more are refused (a caller loop gone wrong). */
export const MAX_PENDING_CHANGES = 10_000;
export const DEFAULT_COMPACT_JOURNAL_BYTES = 4 * 1024 * 1024;
/** Hard bound on the journal, reached only if compaction keeps failing; changes are refused past it. */
const MAX_JOURNAL_BYTES = 256 * 1024 * 1024;

/** A topic record that does not fit MAX_TOPIC_RECORD_BYTES; nothing was written. */
export class MetadataRecordTooLargeError extends Error {
  override readonly name = 'MetadataRecordTooLargeError';
  constructor(
    readonly topic: string,
    readonly bytes: number,
    readonly limitBytes: number,
  ) {
    super(`topic record for ${JSON.stringify(topic)} encodes to ${bytes} bytes, over the limit of ${limitBytes}`);
  }
}

export type MetadataStoreErrorReason = 'locked' | 'closed' | 'failed' | 'corrupt-snapshot' | 'corrupt-journal' | 'too-many-topics' | 'busy' | 'producer-ids-exhausted';

/** The store cannot do what was asked; `reason` says why. */
export class MetadataStoreError extends Error {
  override readonly name = 'MetadataStoreError';
  constructor(
    readonly reason: MetadataStoreErrorReason,
    message: string,
    options?: { cause: unknown },
  ) {
    super(message, options);
  }
}

export interface EmbeddedMetadataStoreOptions {
  dataDir: string;
  logger: Logger;
  /** Journal size past which it is folded into a new snapshot. */
  compactJournalBytes?: number;
}

type JournalEntry =
  | { seq: number; op: 'putTopic'; topic: TopicRecord }
  | { seq: number; op: 'deleteTopic'; name: string }
  | { seq: number; op: 'producerIds'; nextProducerId: number };

interface SnapshotPayload {
  version: number;
  lastSeq: number;
  nextProducerId: number;
  topics: TopicRecord[];
}

/** What a queued change writes (null: nothing, the state already says so) and how it applies. */
type PreparedChange<T> = { payload: Buffer; apply: () => void; result: T } | { payload: null; result: T };

/** Why a record could not be read. */
type RecordProblem = 'torn header' | 'bad length' | 'torn payload' | 'crc mismatch';

function encodeRecord(payload: Buffer): Buffer {
  const record = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  record.writeUInt32BE(payload.length, 0);
  record.writeUInt32BE(crc32c(payload), 4);
  payload.copy(record, RECORD_HEADER_BYTES);
  return record;
}

/** The record at `position`: its payload and end, or what is wrong with it. */
function readRecord(bytes: Buffer, position: number, maxPayloadBytes: number): { payload: Buffer; end: number } | { problem: RecordProblem } {
  if (bytes.length - position < RECORD_HEADER_BYTES) return { problem: 'torn header' };
  const length = bytes.readUInt32BE(position);
  if (length === 0 || length > maxPayloadBytes) return { problem: 'bad length' };
  const end = position + RECORD_HEADER_BYTES + length;
  if (end > bytes.length) return { problem: 'torn payload' };
  const payload = bytes.subarray(position + RECORD_HEADER_BYTES, end);
  if (crc32c(payload) !== bytes.readUInt32BE(position + 4)) return { problem: 'crc mismatch' };
  return { payload, end };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** The topic record in `value`, rebuilt field by field, or a description of what is wrong. */
function topicRecordFrom(value: unknown): TopicRecord | string {
  if (!isPlainObject(value)) return 'topic record is not a map';
  const { name, topicId, partitions, configs, createdAtMs } = value;
  if (typeof name !== 'string' || name.length === 0) return 'topic name is not a non-empty string';
  if (typeof topicId !== 'string') return `topic ${name}: topicId is not a string`;
  if (!isCount(partitions) || partitions < 1) return `topic ${name}: partitions is not a positive integer`;
  if (!isCount(createdAtMs)) return `topic ${name}: createdAtMs is not a non-negative integer`;
  if (!isPlainObject(configs)) return `topic ${name}: configs is not a map`;
  const copied: Record<string, string> = {};
  for (const [key, configValue] of Object.entries(configs)) {
    if (typeof configValue !== 'string') return `topic ${name}: config ${key} is not a string`;
    copied[key] = configValue;
  }
  return { name, topicId, partitions, configs: copied, createdAtMs };
}

function journalEntryFrom(value: unknown): JournalEntry | string {
  if (!isPlainObject(value)) return 'entry is not a map';
  const { seq, op } = value;
  if (!isCount(seq) || seq < 1) return 'seq is not a positive integer';
  switch (op) {
    case 'putTopic': {
      const topic = topicRecordFrom(value['topic']);
      return typeof topic === 'string' ? topic : { seq, op, topic };
    }
    case 'deleteTopic': {
      const name = value['name'];
      return typeof name === 'string' && name.length > 0 ? { seq, op, name } : 'deleteTopic without a name';
    }
    case 'producerIds': {
      const nextProducerId = value['nextProducerId'];
      return isCount(nextProducerId) ? { seq, op, nextProducerId } : 'producerIds without a valid nextProducerId';
    }
    default:
      return `unknown op ${JSON.stringify(op)}`;
  }
}

/**
 * Takes `<dir>/.lock` for this process. A second opener would replay (and truncate) a journal the
 * first one is writing, so this comes before anything is read.
 */
async function lockStoreDirectory(dir: string): Promise<() => Promise<void>> {
  try {
    return await lockDirectory(dir, 'metadata store');
  } catch (error) {
    if (error instanceof DirectoryLockedError) throw new MetadataStoreError('locked', error.message);
    throw error;
  }
}

function decodeMsgpack(payload: Buffer): unknown {
  try {
    return unpack(payload) as unknown;
  } catch {
    return undefined;
  }
}

export class EmbeddedMetadataStore implements MetadataStore {
  private readonly topics = new Map<string, TopicRecord>();
  private nextProducerId = 0;
  private lastSeq = 0;
  private journalBytes = 0;
  /** Changes run one at a time, in call order. */
  private queue: Promise<void> = Promise.resolve();
  private pendingChanges = 0;
  private failure: Error | null = null;
  private closing: Promise<void> | null = null;

  private constructor(
    readonly dir: string,
    private readonly journal: FileHandle,
    private readonly unlock: () => Promise<void>,
    private readonly logger: Logger,
    private readonly compactJournalBytes: number,
  ) {}

  /** Opens (creating when missing) the store under `<dataDir>/meta`, replaying its journal. */
  static async open(options: EmbeddedMetadataStoreOptions): Promise<EmbeddedMetadataStore> {
    const compactJournalBytes = options.compactJournalBytes ?? DEFAULT_COMPACT_JOURNAL_BYTES;
    if (!Number.isSafeInteger(compactJournalBytes) || compactJournalBytes < MAX_JOURNAL_RECORD_BYTES + RECORD_HEADER_BYTES) {
      throw new RangeError(`compactJournalBytes must be an integer >= ${MAX_JOURNAL_RECORD_BYTES + RECORD_HEADER_BYTES} (one largest record), got ${compactJournalBytes}`);
    }
    const dir = join(options.dataDir, META_DIR);
    await mkdir(dir, { recursive: true });
    const unlock = await lockStoreDirectory(dir);
    let journal: FileHandle | undefined;
    try {
      await rm(join(dir, SNAPSHOT_FILE + TEMPORARY_SUFFIX), { force: true });
      journal = await open(join(dir, JOURNAL_FILE), constants.O_RDWR | constants.O_CREAT, 0o644);
      const store = new EmbeddedMetadataStore(dir, journal, unlock, options.logger, compactJournalBytes);
      await fsyncDirectory(dir);
      await store.loadSnapshot();
      await store.replayJournal();
      if (store.journalBytes > compactJournalBytes) await store.compact();
      return store;
    } catch (error) {
      await journal?.close();
      await unlock();
      throw error;
    }
  }

  load(): Promise<MetadataSnapshot> {
    return Promise.resolve({
      topics: [...this.topics.values()].map((topic) => structuredClone(topic)),
      nextProducerId: this.nextProducerId,
    });
  }

  putTopic(topic: TopicRecord): Promise<void> {
    // A copy checked field by field: the caller may change its object once this returns.
    const checked = topicRecordFrom(topic);
    if (typeof checked === 'string') return Promise.reject(new RangeError(`invalid topic record: ${checked}`));
    const topicBytes = pack(checked).length;
    if (topicBytes > MAX_TOPIC_RECORD_BYTES) return Promise.reject(new MetadataRecordTooLargeError(checked.name, topicBytes, MAX_TOPIC_RECORD_BYTES));
    return this.change(() => {
      if (!this.topics.has(checked.name) && this.topics.size >= MAX_TOPICS) {
        throw new MetadataStoreError('too-many-topics', `cannot create topic ${JSON.stringify(checked.name)}: the store holds its limit of ${MAX_TOPICS} topics`);
      }
      const payload = pack({ seq: this.lastSeq + 1, op: 'putTopic', topic: checked } satisfies JournalEntry);
      return { payload, apply: () => void this.topics.set(checked.name, checked), result: undefined };
    });
  }

  deleteTopic(name: string): Promise<void> {
    return this.change(() => {
      if (!this.topics.has(name)) return { payload: null, result: undefined };
      const payload = pack({ seq: this.lastSeq + 1, op: 'deleteTopic', name } satisfies JournalEntry);
      return { payload, apply: () => void this.topics.delete(name), result: undefined };
    });
  }

  reserveProducerIds(count: number): Promise<{ first: number; last: number }> {
    if (!Number.isSafeInteger(count) || count < 1 || count > MAX_PRODUCER_ID_BLOCK) {
      return Promise.reject(new RangeError(`count must be an integer in [1, ${MAX_PRODUCER_ID_BLOCK}], got ${count}`));
    }
    return this.change(() => {
      const first = this.nextProducerId;
      const next = first + count;
      if (next > Number.MAX_SAFE_INTEGER) throw new MetadataStoreError('producer-ids-exhausted', `producer ids are exhausted at ${first}`);
      const payload = pack({ seq: this.lastSeq + 1, op: 'producerIds', nextProducerId: next } satisfies JournalEntry);
      return { payload, apply: () => void (this.nextProducerId = next), result: { first, last: next - 1 } };
    });
  }

  /** Waits for queued changes, then closes the journal. Later calls are refused. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.queue;
      try {
        await this.journal.close();
      } finally {
        await this.unlock();
      }
    })();
    return this.closing;
  }

  /** Bytes in the journal now (for tests and diagnostics). */
  get journalSizeBytes(): number {
    return this.journalBytes;
  }

  /**
   * Queues one change. `prepare` runs when the change's turn comes (so it sees every earlier
   * change applied) and returns the journal payload, or none when there is nothing to write;
   * `apply` runs only once the record is durable.
   */
  private change<T>(prepare: () => PreparedChange<T>): Promise<T> {
    if (this.closing !== null) return Promise.reject(new MetadataStoreError('closed', 'the metadata store is closed'));
    if (this.pendingChanges >= MAX_PENDING_CHANGES) {
      return Promise.reject(new MetadataStoreError('busy', `${MAX_PENDING_CHANGES} metadata changes are already queued`));
    }
    this.pendingChanges++;
    const run = this.queue.then(async () => {
      if (this.failure !== null) throw new MetadataStoreError('failed', `the metadata store stopped after a failed write: ${this.failure.message}; restart to recover`, { cause: this.failure });
      if (this.journalBytes > MAX_JOURNAL_BYTES) {
        throw new MetadataStoreError('failed', `the metadata journal is ${this.journalBytes} bytes: compaction keeps failing (see the log)`);
      }
      const prepared = prepare();
      if (prepared.payload === null) return prepared.result;
      await this.append(encodeRecord(prepared.payload));
      this.lastSeq++;
      prepared.apply();
      if (this.journalBytes > this.compactJournalBytes) await this.compactOrLog();
      return prepared.result;
    });
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.queue = settled;
    void settled.then(() => this.pendingChanges--);
    return run;
  }

  private async append(record: Buffer): Promise<void> {
    if (record.length - RECORD_HEADER_BYTES > MAX_JOURNAL_RECORD_BYTES) throw new Error(`journal record of ${record.length} bytes is over its bound (bug: the caller checks)`);
    const position = this.journalBytes;
    try {
      const { bytesWritten } = await this.journal.write(record, 0, record.length, position);
      if (bytesWritten !== record.length) throw new Error(`short write: ${bytesWritten} of ${record.length} bytes`);
    } catch (error) {
      // Cut the partial record off so the next one follows whole records; if even that fails,
      // stop: a later record behind garbage would be dropped at the next open.
      try {
        await this.journal.truncate(position);
      } catch (truncateError) {
        this.failure = truncateError instanceof Error ? truncateError : new Error(String(truncateError));
      }
      throw error;
    }
    try {
      await this.journal.datasync();
    } catch (error) {
      this.failure = error instanceof Error ? error : new Error(String(error));
      throw error;
    }
    this.journalBytes = position + record.length;
  }

  private async compactOrLog(): Promise<void> {
    try {
      await this.compact();
    } catch (error) {
      // The change itself is durable in the journal; compaction is tried again after the next one.
      this.logger.error('metadata journal compaction failed', { dir: this.dir, error: error instanceof Error ? error.message : String(error) });
    }
  }

  /** Writes the whole state as a new snapshot, then empties the journal. */
  private async compact(): Promise<void> {
    const state: SnapshotPayload = {
      version: SNAPSHOT_VERSION,
      lastSeq: this.lastSeq,
      nextProducerId: this.nextProducerId,
      topics: [...this.topics.values()],
    };
    const record = encodeRecord(pack(state));
    if (record.length > MAX_SNAPSHOT_BYTES) throw new Error(`snapshot of ${record.length} bytes is over ${MAX_SNAPSHOT_BYTES} (bug: topics are bounded)`);
    const path = join(this.dir, SNAPSHOT_FILE);
    const temporary = path + TEMPORARY_SUFFIX;
    const handle = await open(temporary, 'w');
    try {
      await handle.writeFile(record);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
    await fsyncDirectory(this.dir);
    // From here the snapshot holds every journaled change (seq <= lastSeq): emptying the journal
    // loses nothing even if it is cut short by a crash.
    try {
      await this.journal.truncate(0);
      await this.journal.datasync();
    } catch (error) {
      this.failure = error instanceof Error ? error : new Error(String(error));
      throw error;
    }
    const droppedBytes = this.journalBytes;
    this.journalBytes = 0;
    this.logger.info('metadata journal compacted', { dir: this.dir, journalBytes: droppedBytes, snapshotBytes: record.length, topics: state.topics.length });
  }

  private async loadSnapshot(): Promise<void> {
    const path = join(this.dir, SNAPSHOT_FILE);
    let bytes: Buffer;
    try {
      const { size } = await stat(path);
      if (size > MAX_SNAPSHOT_BYTES + RECORD_HEADER_BYTES) throw new MetadataStoreError('corrupt-snapshot', `${path} is ${size} bytes, over the ${MAX_SNAPSHOT_BYTES} a snapshot may reach`);
      bytes = await readFile(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    const corrupt = (detail: string): MetadataStoreError =>
      new MetadataStoreError('corrupt-snapshot', `${path}: ${detail}; the snapshot is written atomically, so this is damage on disk: restore it or remove the meta directory`);
    const record = readRecord(bytes, 0, MAX_SNAPSHOT_BYTES);
    if ('problem' in record) throw corrupt(record.problem);
    if (record.end !== bytes.length) throw corrupt(`${bytes.length - record.end} bytes after the record`);
    const value = decodeMsgpack(record.payload);
    if (!isPlainObject(value)) throw corrupt('payload is not a map');
    const { version, lastSeq, nextProducerId, topics } = value;
    if (version !== SNAPSHOT_VERSION) {
      throw new MetadataStoreError('corrupt-snapshot', `${path}: snapshot version ${JSON.stringify(version)} is not one this tidelog reads (${SNAPSHOT_VERSION})`);
    }
    if (!isCount(lastSeq) || !isCount(nextProducerId) || !Array.isArray(topics) || topics.length > MAX_TOPICS) throw corrupt('bad header fields');
    for (const raw of topics as unknown[]) {
      const topic = topicRecordFrom(raw);
      if (typeof topic === 'string') throw corrupt(topic);
      this.topics.set(topic.name, topic);
    }
    this.lastSeq = lastSeq;
    this.nextProducerId = nextProducerId;
  }

  private async replayJournal(): Promise<void> {
    const { size } = await this.journal.stat();
    if (size > MAX_JOURNAL_BYTES + MAX_JOURNAL_RECORD_BYTES + RECORD_HEADER_BYTES) {
      throw new MetadataStoreError('corrupt-journal', `${join(this.dir, JOURNAL_FILE)} is ${size} bytes, over the ${MAX_JOURNAL_BYTES} it may reach`);
    }
    const bytes = Buffer.alloc(size);
    let filled = 0;
    while (filled < size) {
      const { bytesRead } = await this.journal.read(bytes, filled, size - filled, filled);
      if (bytesRead === 0) break; // shrank under us: what was read is what there is
      filled += bytesRead;
    }
    const snapshotSeq = this.lastSeq;
    let position = 0;
    let applied = 0;
    let skipped = 0;
    let problem: string | null = null;
    const journalBytes = bytes.subarray(0, filled);
    while (position < journalBytes.length) {
      const record = readRecord(journalBytes, position, MAX_JOURNAL_RECORD_BYTES);
      if ('problem' in record) {
        problem = record.problem;
        break;
      }
      const entry = journalEntryFrom(decodeMsgpack(record.payload));
      if (typeof entry === 'string') {
        problem = `undecodable entry (${entry})`;
        break;
      }
      if (entry.seq <= snapshotSeq) {
        // Left over from a compaction cut short: the snapshot already holds it.
        skipped++;
        position = record.end;
        continue;
      }
      if (entry.seq !== this.lastSeq + 1) {
        problem = `seq ${entry.seq} where ${this.lastSeq + 1} was expected`;
        break;
      }
      this.applyEntry(entry);
      this.lastSeq = entry.seq;
      applied++;
      position = record.end;
    }
    if (problem !== null) {
      this.logger.warn('metadata journal: dropped a torn or corrupt tail', {
        path: join(this.dir, JOURNAL_FILE),
        reason: problem,
        position,
        droppedBytes: journalBytes.length - position,
        entriesKept: applied,
        lastSeq: this.lastSeq,
      });
      await this.journal.truncate(position);
      await this.journal.datasync();
    }
    this.journalBytes = position;
    if (skipped > 0) this.logger.info('metadata journal: skipped entries already in the snapshot', { skipped, snapshotSeq });
  }

  private applyEntry(entry: JournalEntry): void {
    switch (entry.op) {
      case 'putTopic':
        this.topics.set(entry.topic.name, entry.topic);
        return;
      case 'deleteTopic':
        this.topics.delete(entry.name);
        return;
      case 'producerIds':
        // Blocks only move forward; max() keeps a stale entry from moving it back.
        this.nextProducerId = Math.max(this.nextProducerId, entry.nextProducerId);
        return;
    }
  }
}
