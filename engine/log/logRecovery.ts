// Opening one partition's log: segment discovery, the recovery scan after an unclean stop (its
// decisions and log lines; the scan itself is the recoverSegment task), dropping torn segments,
// the producer state, and the records-validated-from marker. Runs before the log serves anything,
// on a LogState nothing else touches yet.
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDirectory, readWholeFile } from '../../segments/checkpointFile.js';
import { CorruptBatchError, LogSegment, writeFileSynced, type SegmentScanFacts } from '../../segments/logSegment.js';
import { DELETED_SUFFIX, RECORDS_VALIDATED_MARKER, parseSegmentFileName, segmentPath } from '../../segments/segmentNames.js';
import { StorageError } from '../errors.js';
import { recoverSegmentFile, type RecoverSegmentInput, type RecoverSegmentOutput } from '../workers/tasks/recoverSegment.js';
import { CLEANED_SUFFIX, SWAP_SUFFIX, recoverInterruptedSwaps } from './compaction/segmentSwap.js';
import type { LogState, PartitionLogOptions } from './logState.js';
import { SNAPSHOT_SUFFIX } from './producerSnapshots.js';
import { ProducerStateManager } from './producerState.js';

export interface RecoveryReport {
  segmentsScanned: number;
  bytesScanned: number;
  truncatedBytes: number;
  /** Offsets that were in the dropped bytes, as far as their headers could be read. */
  droppedOffsets: { from: number; to: number | null } | null;
}

/**
 * Loads the segments into `state` (recovering them after an unclean stop), its offsets and its
 * producer state. `listing` holds the names in the directory when the open began. Returns the
 * report of the last recovery scan, or null when none ran.
 */
export async function loadLog(state: LogState, options: PartitionLogOptions, listing: ReadonlySet<string>): Promise<RecoveryReport | null> {
  let names: Iterable<string> = listing;
  if (hasCompactionLeftovers(listing)) {
    // A compaction swap a crash interrupted is finished or undone before segments are listed.
    await recoverInterruptedSwaps(state.dir, state.logger);
    names = await readdir(state.dir);
  }
  const bases: number[] = [];
  const snapshots: number[] = [];
  for (const name of names) {
    if (name.endsWith(SNAPSHOT_SUFFIX)) {
      const offset = Number(name.slice(0, -SNAPSHOT_SUFFIX.length));
      if (Number.isSafeInteger(offset)) snapshots.push(offset);
      continue;
    }
    if (name.endsWith(DELETED_SUFFIX) || name.endsWith('.tmp')) {
      // Leftovers of a deletion or checkpoint interrupted by a crash.
      await rm(join(state.dir, name), { force: true });
      continue;
    }
    const parsed = parseSegmentFileName(name);
    if (parsed?.kind === 'log') bases.push(parsed.baseOffset);
  }
  bases.sort((a, b) => a - b);
  for (const base of bases) state.segments.push(await LogSegment.existing(state.dir, base, state.segmentLimits(), state.resources));

  let report: RecoveryReport | null = null;
  if (!options.cleanShutdown && state.segments.length > 0) report = await recover(state, options.recoveryPoint);

  if (state.segments.length === 0) {
    const base = options.logStartOffset ?? 0;
    state.segments.push(await LogSegment.create(state.dir, base, state.segmentLimits(), state.resources, { fresh: options.fresh === true }));
    // Its name reaches the disk with the log's first flush: an empty segment lost to a crash
    // before then is simply made again.
    state.deferDirectorySync();
  }
  let active = state.activeSegment();
  try {
    await active.loadTail();
  } catch (error) {
    if (!(error instanceof CorruptBatchError)) throw error;
    // A clean stop promised a sound tail, but the bytes rotted since: recover that segment.
    state.logger.warn('active segment is corrupt despite a clean shutdown; recovering it', { file: error.file, position: error.position, problem: error.problem });
    report = await recover(state, active.baseOffset);
    active = state.activeSegment();
    await active.loadTail();
  }
  await active.reopenForAppend();
  state.logEnd = active.nextOffset;
  state.durableEnd = state.logEnd;
  state.nextOffsetToAssign = state.logEnd;
  state.logStart = Math.min(Math.max(options.logStartOffset ?? 0, state.segments[0]!.baseOffset), state.logEnd);
  state.recoveryPointOffset = options.cleanShutdown ? state.logEnd : Math.min(options.recoveryPoint, state.logEnd);
  if (state.epochs.latestEpoch === null) {
    // Written with the first write or flush; lost to a crash before then, it is assigned again.
    const epochs = state.epochs;
    state.deferWrite(epochs.assignFirstInMemory(state.leaderEpoch, state.logEnd), () => epochs.checkpointText());
  }
  else if (state.epochs.latestEpoch < state.leaderEpoch) await state.epochs.assign(state.leaderEpoch, state.logEnd);
  await loadProducerState(state, snapshots);
  state.checkOffsets('open');
  return report;
}

/**
 * Rebuilds idempotent-producer state: the newest snapshot at or below the log end, then the
 * headers of every batch after it. Snapshots past the log end (a truncated tail) are removed.
 */
async function loadProducerState(state: LogState, found: readonly number[]): Promise<void> {
  const snapshots: number[] = [];
  for (const offset of found) {
    if (offset > state.logEnd) await rm(segmentPath(state.dir, offset, SNAPSHOT_SUFFIX), { force: true });
    else snapshots.push(offset);
  }
  snapshots.sort((a, b) => b - a);
  let from = state.logStart;
  for (const offset of snapshots) {
    try {
      const restored = ProducerStateManager.fromSnapshot(await readWholeFile(segmentPath(state.dir, offset, SNAPSHOT_SUFFIX)));
      state.producers = restored;
      from = Math.max(offset, state.logStart);
      break;
    } catch (error) {
      state.logger.warn('ignoring unreadable producer state snapshot', { dir: state.dir, offset, error: String(error) });
    }
  }
  try {
    for (let i = state.segmentIndexFor(from); i < state.segments.length; i++) {
      // A segment recovery just scanned and found without producer batches need not be read again.
      if (state.segments[i]!.knownFreeOfProducerBatches) continue;
      // The log is history, not requests: every producer batch is recorded as it stands.
      await state.segments[i]!.forEachBatchHeader(from, (header) => {
        if (header.producerId >= 0) state.producers.record(header, header.baseOffset, state.clock.nowMs());
      });
    }
  } catch (error) {
    if (!(error instanceof CorruptBatchError)) throw error;
    // Reads will report the corrupt batch; idempotence simply knows less about what follows it.
    state.logger.warn('producer state scan stopped at a corrupt batch', { file: error.file, position: error.position, problem: error.problem });
  }
}

/**
 * Scans every segment from the one holding the recovery point: each batch's lengths, CRC,
 * offsets and epoch. At the first bad byte the log is cut there and later segments go.
 */
async function recover(state: LogState, recoveryPoint: number): Promise<RecoveryReport> {
  let first = 0;
  for (let i = 0; i < state.segments.length; i++) if (state.segments[i]!.baseOffset <= recoveryPoint) first = i;
  const report: RecoveryReport = { segmentsScanned: 0, bytesScanned: 0, truncatedBytes: 0, droppedOffsets: null };
  let expectedNext: number | null = null;
  for (let i = first; i < state.segments.length; i++) {
    const segment = state.segments[i]!;
    if (expectedNext !== null && (segment.baseOffset < expectedNext || (state.rules.contiguousOffsets && segment.baseOffset !== expectedNext && !segment.isEmpty))) {
      await dropSegmentsFrom(state, i, report, `segment ${segment.baseOffset} does not follow offset ${expectedNext - 1}`, expectedNext);
      break;
    }
    const before = segment.sizeBytes;
    const scan = await recoverSegment(state, i, before);
    report.segmentsScanned++;
    report.bytesScanned += scan.validBytes;
    if (scan.failure !== null) {
      report.truncatedBytes += before - scan.validBytes;
      report.droppedOffsets = { from: scan.nextOffset, to: null };
      state.logger.warn('recovery truncated a torn or corrupt log tail', {
        file: segment.logPath,
        position: scan.failure.position,
        problem: scan.failure.problem,
        detail: scan.failure.detail,
        droppedBytes: before - scan.validBytes,
        droppedFromOffset: scan.nextOffset,
      });
      if (i + 1 < state.segments.length) await dropSegmentsFrom(state, i + 1, report, 'they follow a truncated segment', scan.nextOffset);
      break;
    }
    expectedNext = scan.nextOffset;
  }
  // Only a partition that lost something gets a line of its own; the log manager sums up the rest
  // (10,000 partitions gave 10,000 lines that said nothing).
  if (report.truncatedBytes > 0 || report.droppedOffsets !== null) {
    state.logger.info('recovered partition log', { dir: state.dir, ...report, droppedOffsets: JSON.stringify(report.droppedOffsets) });
  }
  return report;
}

/**
 * The heavy part of recovering segment `index`: scan, cut at the first bad byte, write rebuilt
 * indexes (recoverSegment.ts), on a worker thread when the log has a pool. The segment object is
 * then opened afresh from what is on disk. A scan that fails leaves the log unopened: a segment
 * nobody verified is never served.
 */
async function recoverSegment(state: LogState, index: number, fileSizeBytes: number): Promise<RecoverSegmentOutput> {
  const segment = state.segments[index]!;
  const sealed = index < state.segments.length - 1;
  const input: RecoverSegmentInput = { dir: state.dir, baseOffset: segment.baseOffset, fileSizeBytes, ...state.segmentLimits(), contiguousOffsets: state.rules.contiguousOffsets, sealed };
  let result: RecoverSegmentOutput;
  try {
    // No retry: an attempt stopped after its cut would leave a second one a clean-looking file,
    // and the loss unreported. A failed open is retried by the next start, as after a crash.
    const scan = (): Promise<RecoverSegmentOutput> => (state.workers === null ? recoverSegmentFile(input) : state.workers.run('recoverSegment', input, { label: `recover ${segment.logPath}` }));
    result = state.recoveryScans === null ? await scan() : await state.recoveryScans.run(scan);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    state.logger.error('recovery scan failed; the log is not opened', { file: segment.logPath, error: message });
    throw new StorageError(`recovery of ${segment.logPath} failed, so its log was not opened: ${message}`, { cause: error });
  }
  await segment.close();
  state.segments[index] =
    result.active === null
      ? await LogSegment.existing(state.dir, segment.baseOffset, state.segmentLimits(), state.resources)
      : LogSegment.fromScan(state.dir, segment.baseOffset, toBuffers(result.active), state.segmentLimits(), state.resources);
  return result;
}

async function dropSegmentsFrom(state: LogState, index: number, report: RecoveryReport, reason: string, droppedFrom: number): Promise<void> {
  const dropped = state.segments.splice(index);
  let bytes = 0;
  for (const segment of dropped) {
    bytes += segment.sizeBytes;
    for (const path of await segment.markDeleted()) await rm(path, { force: true });
  }
  report.truncatedBytes += bytes;
  report.droppedOffsets = { from: droppedFrom, to: null };
  state.logger.warn('recovery deleted segments', { dir: state.dir, reason, segments: dropped.map((s) => s.baseOffset).join(','), droppedBytes: bytes, droppedFromOffset: droppedFrom });
}

/**
 * Reads the marker saying from which offset on every batch passed append validation. A log
 * without it was written by an older version: everything up to its end is checked on read.
 */
export async function loadRecordsValidatedMarker(state: LogState, markerListed: boolean): Promise<void> {
  const path = join(state.dir, RECORDS_VALIDATED_MARKER);
  const text = markerListed
    ? await readWholeFile(path).then((bytes) => bytes.toString('utf8')).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return null;
        throw error;
      })
    : null;
  // Digits only: an empty file (written, then a crash before its sync) must not read as 0.
  if (text !== null && /^\d+\s*$/.test(text)) {
    const stored = Number(text.trim());
    if (Number.isSafeInteger(stored)) {
      state.recordsValidatedFrom = stored;
      return;
    }
  }
  // Missing (a new log, or one an older version wrote) or unreadable: what is there now is
  // checked on read, what is appended from now on was validated.
  state.recordsValidatedFrom = state.logEnd;
  if (state.logEnd > state.logStart) state.logger.info('log written before append validation; its records are checked when read', { dir: state.dir, belowOffset: state.logEnd });
  if (text === null) {
    // Written with the log's first write or flush. Lost to a crash before its sync, it is written
    // again then, at a log end no lower: records in between are checked on read, only slower.
    const from = state.logEnd;
    state.deferWrite(path, () => `${from}\n`);
    return;
  }
  state.logger.warn('unreadable records-validated marker; records stored so far are checked on read', { file: path });
  await writeFileSynced(path, Buffer.from(`${state.logEnd}\n`));
  await fsyncDirectory(state.dir);
}

/** Whether a compaction left files behind that recoverInterruptedSwaps must settle. */
function hasCompactionLeftovers(names: ReadonlySet<string>): boolean {
  for (const name of names) if (name.endsWith(CLEANED_SUFFIX) || name.endsWith(SWAP_SUFFIX)) return true;
  return false;
}

/** Facts from a worker thread: their buffers arrive as plain Uint8Arrays. */
function toBuffers(facts: SegmentScanFacts): SegmentScanFacts {
  const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { ...facts, offsetIndex: asBuffer(facts.offsetIndex), timeIndex: asBuffer(facts.timeIndex) };
}
