// Read-only verification of a partition directory: every batch of every segment .log and every
// .index / .timeindex file, checked against what segments/ promises about them. It is the engine of
// `tidelog inspect verify` and of the broker's background check of sealed segments; both run it in
// a worker thread (engine/workers/tasks/verifySegments.ts), so it takes paths and returns plain data.
//
// Nothing here writes, renames or truncates: files are opened 'r' and the report says what is
// wrong; repairing is the broker's recovery's job. Segments are streamed through one read window
// (a batch larger than the window is checked in pieces with an incremental CRC), and index files
// are read entry by entry alongside the log, so memory stays bounded whatever the file sizes.
//
// What is checked, per segment, in file-name order:
//   batches   lengths, magic, 64-bit ranges, record count and CRC-32C (checkBatch); base offsets at
//             or above the segment's file-name base, strictly increasing within and across
//             segments and, unless gaps are allowed (compacted topics), contiguous with the first
//             batch at the file-name base; last offset within an int32 of the base (index entries
//             are relative int32s); partition leader epoch = LeaderEpochCache.epochFor(baseOffset)
//             when a leader-epoch-checkpoint exists and covers the offset.
//   .index    whole 8-byte entries; offsets and positions strictly increasing; each position is
//             the start of a batch whose last offset is base + relativeOffset (offsetIndex.ts).
//   .timeindex whole 12-byte entries; timestamps never decreasing, offsets strictly increasing and
//             inside the segment; an entry (T, O) names the last offset of a batch whose max
//             timestamp is T, and no batch up to O has a larger max timestamp (timeIndex.ts).
// A framing or CRC problem ends the check of that .log (where the next batch starts is unknown);
// offset-chain and leader-epoch problems leave the framing intact, so the check goes on.
//
// Checking some segments only (`segmentBaseOffsets`, the broker's background check of a live
// log): the offset chain is followed only between segments that are neighbours on disk and both
// checked, and a segment whose files vanish before they are opened (retention or compaction
// removed it meanwhile) is listed in `segmentsGone`, never reported as corrupt.
import CRC32C from 'crc-32/crc32c.js';
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { LEADER_EPOCH_CHECKPOINT, LeaderEpochCache } from '../leaderEpochCache.js';
import { MAX_STORED_BATCH_BYTES } from '../../../segments/logSegment.js';
import { OFFSET_INDEX_ENTRY_BYTES } from '../../../segments/offsetIndex.js';
import {
  ATTRIBUTES_OFFSET,
  BATCH_HEADER_BYTES,
  BATCH_LENGTH_OFFSET,
  LOG_OVERHEAD,
  RECORDS_OFFSET,
  checkBatch,
  compressionOf,
  computeBatchCrc,
  hex32,
  isControlBatch,
  readInt64AsNumber,
  type BatchHeader,
  type BatchProblem,
} from '../../../segments/recordBatch.js';
import { DELETED_SUFFIX, OFFSET_GAPS_MARKER, parseSegmentFileName } from '../../../segments/segmentNames.js';
import { MAX_DECOMPRESSED_BYTES } from '../../../segments/compression.js';
import { checkRecordsArea } from '../../../segments/recordsCheck.js';
import { TIME_INDEX_ENTRY_BYTES } from '../../../segments/timeIndex.js';
import { MAX_RELATIVE_OFFSET } from '../../../common/limits.js';

/** Default read window: one read covers many batches; larger batches are streamed through it. */
export const DEFAULT_READ_CHUNK_BYTES = 8 * 1024 * 1024;
/** The window must at least hold a batch header. */
export const MIN_READ_CHUNK_BYTES = BATCH_HEADER_BYTES;
export const MAX_READ_CHUNK_BYTES = 256 * 1024 * 1024;
/** Index files are read this many entries at a time. */
const INDEX_ENTRIES_PER_READ = 8192;
/** Problems reported per file before the rest are only counted (a wrong checkpoint could flag every batch). */
export const MAX_PROBLEMS_PER_FILE = 20;
/** How the broker names a partition's directory (LogManager). */
const PARTITION_DIRECTORY_NAME = /^(.+)-(\d+)$/;

/** A path given to an inspect command that is missing or is not the kind of file it needs. */
export class VerifyPathError extends Error {
  override readonly name = 'VerifyPathError';
}

export function resolveReadChunkBytes(value: number | undefined): number {
  const chunk = value ?? DEFAULT_READ_CHUNK_BYTES;
  if (!Number.isSafeInteger(chunk) || chunk < MIN_READ_CHUNK_BYTES || chunk > MAX_READ_CHUNK_BYTES) {
    throw new RangeError(`readChunkBytes must be an integer in [${MIN_READ_CHUNK_BYTES}, ${MAX_READ_CHUNK_BYTES}], got ${chunk}`);
  }
  return chunk;
}

// ---------------------------------------------------------------------------------------------
// Streaming a segment file batch by batch (shared with `tidelog inspect dump`)

export interface ScannedBatch {
  kind: 'batch';
  position: number;
  size: number;
  header: BatchHeader;
  /** The batch's bytes when it fit the read window (valid only until the next item), else null. */
  bytes: Buffer | null;
}

export interface ScannedProblem {
  kind: 'problem';
  position: number;
  problem: BatchProblem;
  detail: string;
  /** The header when its bytes were present and sane enough to read. */
  header: BatchHeader | null;
  /** For 'crc-mismatch': the CRC-32C computed over the stored bytes. */
  computedCrc: number | null;
  fileSizeBytes: number;
}

export interface ScanEnd {
  kind: 'end';
  fileSizeBytes: number;
}

/** Every batch of the file in order; stops after the first 'problem', else ends with 'end'. */
export type ScanItem = ScannedBatch | ScannedProblem | ScanEnd;

/**
 * Walks the batches of a segment .log from position 0, checking each one (checkBatch, CRC
 * included). Reads through a window of `readChunkBytes`; never loads more than that at once.
 * Opens the file read-only and closes it when the walk ends or is abandoned.
 */
export async function* scanSegmentFile(path: string, options: { readChunkBytes?: number } = {}): AsyncGenerator<ScanItem, void, undefined> {
  const chunkBytes = resolveReadChunkBytes(options.readChunkBytes);
  const handle = await open(path, 'r');
  try {
    const fileSize = (await handle.stat()).size;
    const window = Buffer.allocUnsafe(Math.max(Math.min(chunkBytes, fileSize), 1));
    let windowStart = 0;
    let windowLength = 0;
    const fill = async (from: number): Promise<void> => {
      windowStart = from;
      windowLength = await readFully(handle, window, Math.min(window.length, fileSize - from), from);
    };
    const problem = (position: number, kind: BatchProblem, detail: string, header: BatchHeader | null, computedCrc: number | null = null): ScannedProblem => ({
      kind: 'problem',
      position,
      problem: kind,
      detail,
      header,
      computedCrc,
      fileSizeBytes: fileSize,
    });

    let position = 0;
    while (position < fileSize) {
      const remaining = fileSize - position;
      const headerBytes = Math.min(BATCH_HEADER_BYTES, remaining);
      if (position < windowStart || position + headerBytes > windowStart + windowLength) await fill(position);
      let cursor = position - windowStart;
      let inWindow = windowLength - cursor;
      if (inWindow < headerBytes) {
        yield problem(position, 'truncated', `the file shrank while being read: ${inWindow} bytes readable at this position, ${remaining} expected`, null);
        return;
      }
      if (inWindow >= LOG_OVERHEAD) {
        const declaredSize = window.readInt32BE(cursor + BATCH_LENGTH_OFFSET) + LOG_OVERHEAD;
        if (declaredSize > window.length && remaining >= BATCH_HEADER_BYTES) {
          const item = await checkLargeBatch(handle, window, cursor, position, declaredSize, remaining, problem);
          windowLength = 0; // the window was reused for the batch's bytes
          yield item;
          if (item.kind === 'problem') return;
          position += declaredSize;
          continue;
        }
        const wanted = Math.min(Math.max(declaredSize, LOG_OVERHEAD), remaining);
        if (wanted > inWindow) {
          await fill(position);
          cursor = 0;
          inWindow = windowLength;
        }
      }
      const check = checkBatch(window, cursor, cursor + inWindow, { maxBatchBytes: MAX_STORED_BATCH_BYTES });
      if (!check.ok) {
        const computed = check.problem === 'crc-mismatch' && check.header !== null ? computeBatchCrc(window, cursor, check.header.batchLength + LOG_OVERHEAD) : null;
        yield problem(position, check.problem, check.detail, check.header, computed);
        return;
      }
      yield { kind: 'batch', position, size: check.size, header: check.header, bytes: window.subarray(cursor, cursor + check.size) };
      position += check.size;
    }
    yield { kind: 'end', fileSizeBytes: fileSize };
  } finally {
    await handle.close();
  }
}

/**
 * A batch larger than the read window: its header is checked in place (checkBatch sees only the
 * header, so it answers 'truncated' once lengths and magic pass), the remaining header rules are
 * applied here, and the CRC is computed over the batch in window-sized pieces.
 */
async function checkLargeBatch(
  handle: FileHandle,
  window: Buffer,
  cursor: number,
  position: number,
  size: number,
  remaining: number,
  problem: (position: number, kind: BatchProblem, detail: string, header: BatchHeader | null, computedCrc?: number | null) => ScannedProblem,
): Promise<ScannedBatch | ScannedProblem> {
  const headerCheck = checkBatch(window, cursor, cursor + BATCH_HEADER_BYTES, { maxBatchBytes: MAX_STORED_BATCH_BYTES, verifyCrc: false });
  if (headerCheck.ok) throw new Error(`assertion: a ${size}-byte batch cannot fit its ${BATCH_HEADER_BYTES}-byte header`);
  if (headerCheck.problem !== 'truncated' || headerCheck.header === null) return problem(position, headerCheck.problem, headerCheck.detail, headerCheck.header);
  const header = headerCheck.header;
  if (size > remaining) return problem(position, 'truncated', `batch declares ${size} bytes but ${remaining} remain`, header);
  // The same rules, in the same order, as checkBatch applies after its length check.
  if (Number.isNaN(header.baseOffset) || Number.isNaN(header.producerId) || Number.isNaN(header.maxTimestamp) || Number.isNaN(header.baseTimestamp)) {
    return problem(position, 'bad-offsets', 'a 64-bit field is beyond 2^53', header);
  }
  if (header.lastOffsetDelta < 0) return problem(position, 'bad-offsets', `lastOffsetDelta ${header.lastOffsetDelta} is negative`, header);
  if (header.recordCount < 0 || header.recordCount > header.lastOffsetDelta + 1) {
    return problem(position, 'bad-record-count', `recordCount ${header.recordCount} does not fit lastOffsetDelta ${header.lastOffsetDelta}`, header);
  }
  let crc = 0;
  const end = position + size;
  for (let at = position + ATTRIBUTES_OFFSET; at < end; ) {
    const length = await readFully(handle, window, Math.min(window.length, end - at), at);
    if (length === 0) return problem(position, 'truncated', `the file shrank while being read: nothing readable at ${at}`, header);
    crc = CRC32C.buf(window.subarray(0, length), crc);
    at += length;
  }
  const computed = crc >>> 0;
  if (computed !== header.crc) return problem(position, 'crc-mismatch', `stored CRC ${hex32(header.crc)}, computed ${hex32(computed)}`, header, computed);
  return { kind: 'batch', position, size, header, bytes: null };
}

/** Reads up to `length` bytes at `position` into the start of `target`; fewer only at end of file. */
async function readFully(handle: FileHandle, target: Buffer, length: number, position: number): Promise<number> {
  let read = 0;
  while (read < length) {
    const { bytesRead } = await handle.read(target, read, length - read, position + read);
    if (bytesRead === 0) break;
    read += bytesRead;
  }
  return read;
}

// ---------------------------------------------------------------------------------------------
// The report

export type VerifyProblemKind =
  | BatchProblem
  | 'offset-chain' // a base offset out of order, leaving a gap, or not where the file name says
  | 'leader-epoch' // partition leader epoch differs from the leader-epoch-checkpoint
  | 'bad-checkpoint' // leader-epoch-checkpoint unreadable: epochs were not checked
  | 'index-size' // index file is not a whole number of entries
  | 'index-order' // index entries do not increase
  | 'index-entry' // an entry does not match the log (not a batch start, wrong offset, outside the segment)
  | 'invalid-records'; // CRC right, but the records do not decode (compression, lengths, count, offset deltas)

export interface VerifyProblem {
  /** Path of the file (the partition dir joined with its name). */
  file: string;
  /** Byte position in that file: the batch's start, or the index entry's start. */
  position: number;
  /** Base offset of the batch concerned, as read from its header; null when unreadable or not a batch. */
  baseOffset: number | null;
  problem: VerifyProblemKind;
  detail: string;
}

/** Something an operator may want to know that is not corruption (e.g. an index the broker will rebuild). */
export interface VerifyNotice {
  file: string;
  detail: string;
}

export interface SegmentSummary {
  file: string;
  /** Base offset from the file name. */
  baseOffset: number;
  sizeBytes: number;
  /** Bytes up to the first batch whose framing or CRC failed (all of them when none did). */
  checkedBytes: number;
  batches: number;
  firstOffset: number | null;
  lastOffset: number | null;
  offsetIndexEntries: number | null;
  timeIndexEntries: number | null;
  problems: number;
}

export interface VerifyReport {
  dir: string;
  allowOffsetGaps: boolean;
  /** Whether batches were compared with a leader-epoch-checkpoint. */
  leaderEpochsChecked: boolean;
  segmentsChecked: number;
  batches: number;
  /** Bytes of .log checked. */
  bytes: number;
  segments: SegmentSummary[];
  problems: VerifyProblem[];
  /** Problems found beyond MAX_PROBLEMS_PER_FILE in some file: counted, not listed. */
  problemsNotListed: number;
  notices: VerifyNotice[];
  /**
   * Only with `segmentBaseOffsets`: base offsets asked for whose files were gone when their turn
   * came (deleted or replaced meanwhile); not checked and not a problem.
   */
  segmentsGone?: number[];
}

export interface VerifyOptions {
  /** Offsets may skip (compacted topics): no contiguity, and a segment may start above its name. */
  allowOffsetGaps?: boolean;
  /** Read window for segment files; see DEFAULT_READ_CHUNK_BYTES. */
  readChunkBytes?: number;
  /**
   * Check only the segments with these base offsets (a live log's sealed segments). A missing
   * directory or segment is then reported in `segmentsGone` instead of thrown or flagged.
   */
  segmentBaseOffsets?: readonly number[];
}

// ---------------------------------------------------------------------------------------------
// Verification

/** Collects problems per file, listing at most MAX_PROBLEMS_PER_FILE of each. */
class ProblemLog {
  readonly problems: VerifyProblem[] = [];
  notListed = 0;
  private readonly perFile = new Map<string, number>();

  add(problem: VerifyProblem): void {
    const count = (this.perFile.get(problem.file) ?? 0) + 1;
    this.perFile.set(problem.file, count);
    if (count > MAX_PROBLEMS_PER_FILE) this.notListed++;
    else this.problems.push(problem);
  }

  countFor(file: string): number {
    return this.perFile.get(file) ?? 0;
  }

  /** Forgets everything reported about `files` (a segment that turned out to be gone). */
  forget(files: ReadonlySet<string>): void {
    for (const file of files) {
      const count = this.perFile.get(file) ?? 0;
      this.notListed -= Math.max(0, count - MAX_PROBLEMS_PER_FILE);
      this.perFile.delete(file);
    }
    const kept = this.problems.filter((problem) => !files.has(problem.file));
    this.problems.splice(0, this.problems.length, ...kept);
  }
}

/** What the batches before the current one established. */
interface ChainState {
  /** Last offset of the previous batch (in this or an earlier segment), or null before the first. */
  lastOffset: number | null;
  /** False when batches may be missing after `lastOffset` (an earlier problem): then gaps are not judged. */
  exact: boolean;
}

interface SegmentFiles {
  log: string | null;
  index: string | null;
  timeindex: string | null;
}

/**
 * Checks every segment and index file of a partition directory (or, with `segmentBaseOffsets`,
 * those segments only). Side-effect free: reads only. Throws VerifyPathError when `dir` is
 * missing, not a directory, or holds no segment .log file (unless segments were named: see
 * VerifyOptions).
 */
export async function verifyPartitionDir(dir: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  const readChunkBytes = resolveReadChunkBytes(options.readChunkBytes);
  // A log that was ever compacted says so in its directory; its gaps are not damage.
  const allowOffsetGaps = (options.allowOffsetGaps ?? false) || (await stat(join(dir, OFFSET_GAPS_MARKER)).then(() => true, () => false));
  const wanted = options.segmentBaseOffsets === undefined ? null : new Set(options.segmentBaseOffsets);
  if (wanted === null) await requireDirectory(dir);
  const problems = new ProblemLog();
  const notices: VerifyNotice[] = [];
  const gone: number[] = [];

  const segments = new Map<number, SegmentFiles>();
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (error) {
    // Named segments of a directory that is gone: the partition was deleted meanwhile.
    if (wanted === null || !isGoneError(error)) throw error;
    names = [];
  }
  for (const name of names) {
    const parsed = parseSegmentFileName(name);
    if (parsed === null) {
      if (name.endsWith(DELETED_SUFFIX)) notices.push({ file: join(dir, name), detail: 'pending deletion; not checked' });
      else if (/\.(cleaned|swap)$/.test(name)) notices.push({ file: join(dir, name), detail: 'left by an unfinished segment replacement; not checked' });
      continue;
    }
    const files = segments.get(parsed.baseOffset) ?? { log: null, index: null, timeindex: null };
    files[parsed.kind] = name;
    segments.set(parsed.baseOffset, files);
  }
  if (wanted === null && ![...segments.values()].some((files) => files.log !== null)) {
    throw new VerifyPathError(`${dir} is not a partition directory: it holds no segment .log file (names like 00000000000000000000.log)`);
  }
  if (wanted !== null) {
    for (const baseOffset of wanted) if ((segments.get(baseOffset)?.log ?? null) === null) gone.push(baseOffset);
  }

  let epochs: LeaderEpochCache | null = null;
  const checkpointPath = join(dir, LEADER_EPOCH_CHECKPOINT);
  if (await isFile(checkpointPath)) {
    try {
      epochs = await LeaderEpochCache.load(dir);
    } catch (error) {
      problems.add({ file: checkpointPath, position: 0, baseOffset: null, problem: 'bad-checkpoint', detail: `${errorMessage(error)}; leader epochs not checked` });
    }
  }

  const report: VerifyReport = {
    dir,
    allowOffsetGaps,
    leaderEpochsChecked: epochs !== null && !epochs.isEmpty,
    segmentsChecked: 0,
    batches: 0,
    bytes: 0,
    segments: [],
    problems: problems.problems,
    problemsNotListed: 0,
    notices,
  };
  const chain: ChainState = { lastOffset: null, exact: true };
  // With named segments, the chain carries over only to the next segment both on disk and in the
  // caller's list from a segment just checked; anything between may have been deleted meanwhile.
  const wantedInOrder = wanted === null ? [] : [...wanted].sort((a, b) => a - b);
  let previousChecked: number | null = null;
  for (const [baseOffset, files] of [...segments.entries()].sort(([a], [b]) => a - b)) {
    if (files.log === null) {
      for (const name of [files.index, files.timeindex]) {
        if (name !== null) notices.push({ file: join(dir, name), detail: 'index without a .log; the broker ignores it' });
      }
      if (wanted !== null) previousChecked = null;
      continue;
    }
    if (wanted !== null) {
      if (!wanted.has(baseOffset)) {
        previousChecked = null;
        continue;
      }
      if (previousChecked === null || wantedInOrder[wantedInOrder.indexOf(baseOffset) - 1] !== previousChecked) {
        chain.lastOffset = null;
        chain.exact = true;
      }
    }
    const noticesBefore = notices.length;
    let summary: SegmentSummary;
    try {
      summary = await verifySegment({ dir, baseOffset, files, allowOffsetGaps, epochs, readChunkBytes, chain, problems, notices });
    } catch (error) {
      if (wanted === null || !isGoneError(error)) throw error;
      // Removed between the listing and the read: nothing of what was seen of it counts.
      problems.forget(new Set([files.log, files.index, files.timeindex].flatMap((name) => (name === null ? [] : [join(dir, name)]))));
      notices.splice(noticesBefore);
      gone.push(baseOffset);
      previousChecked = null;
      continue;
    }
    report.segments.push(summary);
    report.segmentsChecked++;
    report.batches += summary.batches;
    report.bytes += summary.checkedBytes;
    previousChecked = baseOffset;
  }
  report.problemsNotListed = problems.notListed;
  if (wanted !== null) report.segmentsGone = gone.sort((a, b) => a - b);
  return report;
}

/** A file or directory that is not there (any more). */
function isGoneError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * The partition directories `dir` stands for: itself when it holds a segment .log, else its
 * subdirectories named `<topic>-<partition>` that hold one (a data directory, or any directory of
 * copied partitions), in topic then partition order. Throws VerifyPathError when it is neither.
 */
export async function partitionDirectoriesIn(dir: string): Promise<string[]> {
  await requireDirectory(dir);
  const entries = await readdir(dir, { withFileTypes: true });
  if (entries.some((entry) => parseSegmentFileName(entry.name)?.kind === 'log')) return [dir];
  const partitions: Array<{ path: string; topic: string; partition: number }> = [];
  for (const entry of entries) {
    const match = entry.isDirectory() ? PARTITION_DIRECTORY_NAME.exec(entry.name) : null;
    if (match === null) continue;
    const path = join(dir, entry.name);
    if ((await readdir(path)).some((name) => parseSegmentFileName(name)?.kind === 'log')) partitions.push({ path, topic: match[1]!, partition: Number(match[2]) });
  }
  if (partitions.length === 0) {
    throw new VerifyPathError(`${dir} is not a partition directory: it holds no segment .log file (names like 00000000000000000000.log)`);
  }
  partitions.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
  return partitions.map((partition) => partition.path);
}

interface SegmentContext {
  dir: string;
  baseOffset: number;
  files: SegmentFiles;
  allowOffsetGaps: boolean;
  epochs: LeaderEpochCache | null;
  readChunkBytes: number;
  chain: ChainState;
  problems: ProblemLog;
  notices: VerifyNotice[];
}

async function verifySegment(context: SegmentContext): Promise<SegmentSummary> {
  const { dir, baseOffset, files, chain, problems } = context;
  const logPath = join(dir, files.log!);
  const summary: SegmentSummary = {
    file: logPath,
    baseOffset,
    sizeBytes: 0,
    checkedBytes: 0,
    batches: 0,
    firstOffset: null,
    lastOffset: null,
    offsetIndexEntries: null,
    timeIndexEntries: null,
    problems: 0,
  };
  if (files.index === null) context.notices.push({ file: logPath, detail: 'no .index file (normal for the active segment after a crash; the broker rebuilds it)' });
  if (files.timeindex === null) context.notices.push({ file: logPath, detail: 'no .timeindex file (normal for the active segment after a crash; the broker rebuilds it)' });
  let offsetIndex: OffsetIndexCheck | null = null;
  let timeIndex: TimeIndexCheck | null = null;
  try {
    if (files.index !== null) offsetIndex = await OffsetIndexCheck.open(join(dir, files.index), baseOffset, problems);
    if (files.timeindex !== null) timeIndex = await TimeIndexCheck.open(join(dir, files.timeindex), baseOffset, problems);
    summary.offsetIndexEntries = offsetIndex?.entryCount ?? null;
    summary.timeIndexEntries = timeIndex?.entryCount ?? null;
    let complete = false;
    let firstInSegment = true;
    for await (const item of scanSegmentFile(logPath, { readChunkBytes: context.readChunkBytes })) {
      if (item.kind === 'end') {
        summary.sizeBytes = item.fileSizeBytes;
        summary.checkedBytes = item.fileSizeBytes;
        complete = true;
        break;
      }
      if (item.kind === 'problem') {
        summary.sizeBytes = item.fileSizeBytes;
        summary.checkedBytes = item.position;
        problems.add({ file: logPath, position: item.position, baseOffset: item.header?.baseOffset ?? null, problem: item.problem, detail: item.detail });
        // Batches after this one may exist but cannot be located: later offsets are not exact.
        chain.exact = false;
        break;
      }
      const { header, position } = item;
      const lastOffset = header.baseOffset + header.lastOffsetDelta;
      const chainProblem = offsetChainProblem(header, firstInSegment, context);
      if (chainProblem !== null) {
        problems.add({ file: logPath, position, baseOffset: header.baseOffset, problem: 'offset-chain', detail: chainProblem });
        // This header's offsets are suspect: keep the last trusted offset as a lower bound only.
        chain.exact = false;
      } else {
        chain.lastOffset = lastOffset;
        chain.exact = true;
      }
      // A base offset that broke the chain may itself be the rotted field: no epoch to look up by it.
      const expectedEpoch = chainProblem === null ? (context.epochs?.epochFor(header.baseOffset) ?? null) : null;
      if (expectedEpoch !== null && header.partitionLeaderEpoch !== expectedEpoch) {
        problems.add({
          file: logPath,
          position,
          baseOffset: header.baseOffset,
          problem: 'leader-epoch',
          detail: `partition leader epoch ${header.partitionLeaderEpoch}, but ${LEADER_EPOCH_CHECKPOINT} puts offset ${header.baseOffset} in epoch ${expectedEpoch}`,
        });
      }
      const recordsProblem = item.bytes === null ? null : storedRecordsProblem(item.bytes, header, context.allowOffsetGaps);
      if (recordsProblem !== null) problems.add({ file: logPath, position, baseOffset: header.baseOffset, problem: 'invalid-records', detail: recordsProblem });
      if (item.bytes === null) context.notices.push({ file: logPath, detail: `the batch at position ${position} is larger than the read window (${context.readChunkBytes} bytes): its CRC was checked, its records were not` });
      await offsetIndex?.onBatch(position, header);
      await timeIndex?.onBatch(position, header);
      summary.firstOffset ??= header.baseOffset;
      summary.lastOffset = lastOffset;
      summary.batches++;
      firstInSegment = false;
    }
    if (complete && summary.batches === 0 && chain.lastOffset !== null && baseOffset <= chain.lastOffset) {
      problems.add({ file: logPath, position: 0, baseOffset: null, problem: 'offset-chain', detail: `empty segment's base offset ${baseOffset} is not above offset ${chain.lastOffset} of the segments before it` });
    }
    await offsetIndex?.finish(complete, summary.checkedBytes);
    await timeIndex?.finish(complete, summary.lastOffset);
  } finally {
    await offsetIndex?.close();
    await timeIndex?.close();
  }
  summary.problems = problems.countFor(logPath) + (offsetIndex === null ? 0 : problems.countFor(offsetIndex.path)) + (timeIndex === null ? 0 : problems.countFor(timeIndex.path));
  return summary;
}

/**
 * Why a stored batch's records do not decode (what append validation refuses), or null. Batches
 * written by versions before that validation may fail here while their CRC is right.
 */
function storedRecordsProblem(batch: Buffer, header: BatchHeader, allowOffsetGaps: boolean): string | null {
  if (header.recordCount === 0 || isControlBatch(header.attributes)) return null;
  const verdict = checkRecordsArea(compressionOf(header.attributes), batch.subarray(RECORDS_OFFSET), MAX_DECOMPRESSED_BYTES, {
    recordCount: header.recordCount,
    lastOffsetDelta: header.lastOffsetDelta,
    denseOffsetDeltas: !allowOffsetGaps,
    baseTimestamp: header.baseTimestamp,
    requireKeys: false,
    timestampRange: null,
  });
  return verdict.ok ? null : `${verdict.problem}: ${verdict.detail}`;
}

/** Why a batch's offsets break the chain rules, or null. Reads the chain state; does not change it. */
function offsetChainProblem(header: BatchHeader, firstInSegment: boolean, context: SegmentContext): string | null {
  const { baseOffset: segmentBase, chain, allowOffsetGaps } = context;
  const lastOffset = header.baseOffset + header.lastOffsetDelta;
  if (header.baseOffset < segmentBase) return `base offset ${header.baseOffset} is below the segment's base offset ${segmentBase} (its file name)`;
  if (chain.lastOffset !== null && header.baseOffset <= chain.lastOffset) {
    return `base offset ${header.baseOffset} does not follow offset ${chain.lastOffset} of the batch before it`;
  }
  if (!allowOffsetGaps && firstInSegment && header.baseOffset !== segmentBase) {
    return `first batch starts at offset ${header.baseOffset} but the file name says the segment starts at ${segmentBase}`;
  }
  if (!allowOffsetGaps && chain.exact && chain.lastOffset !== null && header.baseOffset !== chain.lastOffset + 1) {
    return `base offset ${header.baseOffset} leaves a gap after offset ${chain.lastOffset} (expected ${chain.lastOffset + 1})`;
  }
  if (lastOffset - segmentBase > MAX_RELATIVE_OFFSET) return `last offset ${lastOffset} is more than 2^31-1 above the segment base ${segmentBase}`;
  return null;
}

// ---------------------------------------------------------------------------------------------
// Index files, read entry by entry beside the log scan

/** Sequential reader of fixed-size entries; owns its read-only file handle. */
class EntryReader {
  private readonly buffer: Buffer;
  private bufferStart = 0; // index of the first entry in the buffer
  private bufferEntries = 0;

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    readonly entryBytes: number,
    readonly sizeBytes: number,
  ) {
    this.buffer = Buffer.allocUnsafe(entryBytes * Math.max(1, Math.min(INDEX_ENTRIES_PER_READ, Math.floor(sizeBytes / entryBytes))));
  }

  static async open(path: string, entryBytes: number): Promise<EntryReader> {
    const handle = await open(path, 'r');
    try {
      return new EntryReader(path, handle, entryBytes, (await handle.stat()).size);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  get entryCount(): number {
    return Math.floor(this.sizeBytes / this.entryBytes);
  }

  /** Entry `index` (read in order), or null past the last whole entry. Valid until the next call. */
  async entry(index: number): Promise<Buffer | null> {
    if (index >= this.entryCount) return null;
    if (index < this.bufferStart || index >= this.bufferStart + this.bufferEntries) {
      const entries = Math.min(this.buffer.length / this.entryBytes, this.entryCount - index);
      const read = await readFully(this.handle, this.buffer, entries * this.entryBytes, index * this.entryBytes);
      this.bufferStart = index;
      this.bufferEntries = Math.floor(read / this.entryBytes);
      if (this.bufferEntries === 0) return null; // the file shrank while being read
    }
    const at = (index - this.bufferStart) * this.entryBytes;
    return this.buffer.subarray(at, at + this.entryBytes);
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

interface BatchAt {
  position: number;
  baseOffset: number;
  lastOffset: number;
}

function describeBatch(batch: BatchAt): string {
  return `the batch at position ${batch.position} (offsets ${batch.baseOffset}..${batch.lastOffset})`;
}

/**
 * What both index checks share: the entry reader, the size check at open, reporting (one problem
 * per index: an inconsistent index is rebuilt whole) and closing. Subclasses read and settle
 * their own entries in advance().
 */
abstract class IndexFileCheck {
  protected next = 0;
  /** Set after the first problem: an inconsistent index is rebuilt whole, one report is enough. */
  protected stopped = false;

  protected constructor(
    protected readonly reader: EntryReader,
    protected readonly segmentBase: number,
    private readonly problems: ProblemLog,
  ) {}

  /** Checks the file size, then reads the first entry. */
  protected async start(entryBytes: number): Promise<void> {
    const trailing = this.reader.sizeBytes % entryBytes;
    if (trailing !== 0) {
      this.report(this.reader.sizeBytes - trailing, `${this.reader.sizeBytes} bytes is not a whole number of ${entryBytes}-byte entries (${trailing} bytes left over)`, 'index-size');
    } else {
      await this.advance();
    }
  }

  get path(): string {
    return this.reader.path;
  }

  get entryCount(): number {
    return this.reader.entryCount;
  }

  protected report(position: number, detail: string, problem: VerifyProblemKind = 'index-entry', baseOffset: number | null = null): void {
    this.problems.add({ file: this.reader.path, position, baseOffset, problem, detail });
    this.stopped = true;
    this.clearCurrent();
  }

  protected abstract clearCurrent(): void;
  protected abstract advance(): Promise<void>;

  /** The next entry's bytes and number, or null (current cleared) after the last or a problem. */
  protected async nextEntry(): Promise<{ index: number; bytes: Buffer } | null> {
    const bytes = this.stopped ? null : await this.reader.entry(this.next);
    if (bytes === null) {
      this.clearCurrent();
      return null;
    }
    return { index: this.next++, bytes };
  }

  async close(): Promise<void> {
    await this.reader.close();
  }
}

/**
 * Checks a .index against the batches of its log as the scan meets them: entries are ordered by
 * position, so each entry is settled when the scan reaches or passes its position.
 */
class OffsetIndexCheck extends IndexFileCheck {
  private current: { index: number; offset: number; position: number } | null = null;
  private previous: { offset: number; position: number } | null = null;
  private lastBatch: BatchAt | null = null;

  private constructor(reader: EntryReader, segmentBase: number, problems: ProblemLog) {
    super(reader, segmentBase, problems);
  }

  protected clearCurrent(): void {
    this.current = null;
  }

  static async open(path: string, segmentBase: number, problems: ProblemLog): Promise<OffsetIndexCheck> {
    const check = new OffsetIndexCheck(await EntryReader.open(path, OFFSET_INDEX_ENTRY_BYTES), segmentBase, problems);
    await check.start(OFFSET_INDEX_ENTRY_BYTES);
    return check;
  }

  protected async advance(): Promise<void> {
    const next = await this.nextEntry();
    if (next === null) return;
    const { index, bytes } = next;
    const relativeOffset = bytes.readInt32BE(0);
    const position = bytes.readInt32BE(4);
    const entry = { index, offset: this.segmentBase + relativeOffset, position };
    const at = index * OFFSET_INDEX_ENTRY_BYTES;
    if (relativeOffset < 0 || position < 0) {
      this.report(at, `entry ${index} (relative offset ${relativeOffset}, position ${position}) is negative`);
      return;
    }
    if (this.previous !== null && (entry.offset <= this.previous.offset || position <= this.previous.position)) {
      this.report(at, `entry ${index} (offset ${entry.offset}, position ${position}) does not increase after (offset ${this.previous.offset}, position ${this.previous.position})`, 'index-order');
      return;
    }
    this.previous = { offset: entry.offset, position };
    this.current = entry;
  }

  private describe(entry: { index: number; offset: number; position: number }): string {
    return `entry ${entry.index} (offset ${entry.offset}, position ${entry.position})`;
  }

  async onBatch(position: number, header: BatchHeader): Promise<void> {
    while (this.current !== null && this.current.position < position) {
      const where = this.lastBatch === null ? 'it is before the first batch' : `it falls inside ${describeBatch(this.lastBatch)}`;
      this.report(this.current.index * OFFSET_INDEX_ENTRY_BYTES, `${this.describe(this.current)} does not point at the start of a batch: ${where}`);
    }
    const batch = { position, baseOffset: header.baseOffset, lastOffset: header.baseOffset + header.lastOffsetDelta };
    if (this.current !== null && this.current.position === position) {
      if (this.current.offset !== batch.lastOffset) {
        this.report(
          this.current.index * OFFSET_INDEX_ENTRY_BYTES,
          `${this.describe(this.current)} points at ${describeBatch(batch)}, whose last offset is ${batch.lastOffset}, not ${this.current.offset}`,
          'index-entry',
          header.baseOffset,
        );
      } else {
        await this.advance();
      }
    }
    this.lastBatch = batch;
  }

  /** After the scan: entries not yet settled point past the last batch (when the whole log was read). */
  async finish(complete: boolean, checkedBytes: number): Promise<void> {
    const current = this.current;
    if (current === null) return;
    if (current.position < checkedBytes) {
      this.report(current.index * OFFSET_INDEX_ENTRY_BYTES, `${this.describe(current)} does not point at the start of a batch: it falls inside ${this.lastBatch === null ? 'no batch' : describeBatch(this.lastBatch)}`);
    } else if (complete) {
      this.report(current.index * OFFSET_INDEX_ENTRY_BYTES, `${this.describe(current)} points at or past the end of the log (${checkedBytes} bytes)`);
    }
    // Otherwise the entry points into the part of the log that could not be read: not judged.
  }
}

/** Checks a .timeindex against the batches of its log; entries are ordered by offset. */
class TimeIndexCheck extends IndexFileCheck {
  private current: { index: number; timestamp: number; offset: number } | null = null;
  private previous: { timestamp: number; offset: number } | null = null;
  /** Largest batch max timestamp so far, and the batch that carried it. */
  private runningMax: { timestamp: number; batch: BatchAt } | null = null;

  private constructor(reader: EntryReader, segmentBase: number, problems: ProblemLog) {
    super(reader, segmentBase, problems);
  }

  protected clearCurrent(): void {
    this.current = null;
  }

  static async open(path: string, segmentBase: number, problems: ProblemLog): Promise<TimeIndexCheck> {
    const check = new TimeIndexCheck(await EntryReader.open(path, TIME_INDEX_ENTRY_BYTES), segmentBase, problems);
    await check.start(TIME_INDEX_ENTRY_BYTES);
    return check;
  }

  protected async advance(): Promise<void> {
    const next = await this.nextEntry();
    if (next === null) return;
    const { index, bytes } = next;
    const timestamp = readInt64AsNumber(bytes, 0);
    const relativeOffset = bytes.readInt32BE(8);
    const entry = { index, timestamp, offset: this.segmentBase + relativeOffset };
    const at = index * TIME_INDEX_ENTRY_BYTES;
    if (Number.isNaN(timestamp)) {
      this.report(at, `entry ${index} has a timestamp beyond 2^53`);
      return;
    }
    if (relativeOffset < 0) {
      this.report(at, `entry ${index} (timestamp ${timestamp}, offset ${entry.offset}) names an offset below the segment base ${this.segmentBase}`);
      return;
    }
    if (this.previous !== null && (timestamp < this.previous.timestamp || entry.offset <= this.previous.offset)) {
      this.report(at, `entry ${index} (timestamp ${timestamp}, offset ${entry.offset}) does not increase after (timestamp ${this.previous.timestamp}, offset ${this.previous.offset})`, 'index-order');
      return;
    }
    this.previous = { timestamp, offset: entry.offset };
    this.current = entry;
  }

  private describe(entry: { index: number; timestamp: number; offset: number }): string {
    return `entry ${entry.index} (timestamp ${entry.timestamp}, offset ${entry.offset})`;
  }

  async onBatch(position: number, header: BatchHeader): Promise<void> {
    const batch = { position, baseOffset: header.baseOffset, lastOffset: header.baseOffset + header.lastOffsetDelta };
    const runningMax = this.runningMax === null || header.maxTimestamp > this.runningMax.timestamp ? { timestamp: header.maxTimestamp, batch } : this.runningMax;
    this.runningMax = runningMax;
    // Several entries can fall in one batch only when they are wrong, so each step settles one entry.
    for (let current = this.current; current !== null; current = this.current) {
      const at = current.index * TIME_INDEX_ENTRY_BYTES;
      if (current.offset < batch.baseOffset) {
        this.report(at, `${this.describe(current)} names an offset that is not the last offset of any batch (the next batch is ${describeBatch(batch)})`);
      } else if (current.offset > batch.lastOffset) {
        return;
      } else if (current.timestamp >= 0 && current.offset !== batch.lastOffset) {
        // A negative timestamp (no timestamp) carries no "which batch" promise: the writer starts its
        // running maximum at (-1, segment base), which need not be a batch's last offset.
        this.report(at, `${this.describe(current)} names an offset inside ${describeBatch(batch)}, not its last offset`, 'index-entry', batch.baseOffset);
      } else if (runningMax.timestamp > current.timestamp) {
        const carrier = runningMax.batch;
        this.report(at, `${this.describe(current)} promises timestamps <= ${current.timestamp} up to offset ${current.offset}, but ${describeBatch(carrier)} has max timestamp ${runningMax.timestamp}`, 'index-entry', carrier.baseOffset);
      } else if (current.timestamp >= 0 && header.maxTimestamp !== current.timestamp) {
        this.report(at, `${this.describe(current)} names ${describeBatch(batch)}, whose max timestamp is ${header.maxTimestamp}`, 'index-entry', batch.baseOffset);
      } else {
        await this.advance();
      }
    }
  }

  async finish(complete: boolean, lastOffset: number | null): Promise<void> {
    const current = this.current;
    if (current === null || !complete) return;
    const segmentEnd = lastOffset === null ? 'the segment holds no batch' : `the segment's last offset is ${lastOffset}`;
    this.report(current.index * TIME_INDEX_ENTRY_BYTES, `${this.describe(current)} names an offset outside the segment: ${segmentEnd}`);
  }
}

// ---------------------------------------------------------------------------------------------

async function requireDirectory(dir: string): Promise<void> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(dir)).isDirectory();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new VerifyPathError(`no such directory: ${dir}`);
    throw error;
  }
  if (!isDirectory) throw new VerifyPathError(`${dir} is not a directory; verify takes a partition directory (use \`inspect dump\` for one segment file)`);
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
