// Recovery of one segment after an unclean stop: scan every batch (lengths, magic, CRC-32C, offset
// chain, leader epoch), cut the .log at the first bad byte, rebuild the .index and .timeindex from
// what is left and write them. The partition log decides what the result means (drop later
// segments, log the loss); this is only the heavy part, so that N partitions can recover on N
// worker threads. PartitionLog calls the same function in its own thread when it has no pool:
// one implementation, LogSegment.scan, whichever thread runs it.
//
// The indexes are written in place, not through temporary names: until recovery of the whole log
// has finished, the log is not opened and the clean-shutdown marker is absent, so a crash or a
// stopped task half-way leaves files that the next start scans and rewrites again.
import { statSync } from 'node:fs';
import { LeaderEpochCache } from '../../log/leaderEpochCache.js';
import { FileHandleCache } from '../../../segments/fileHandleCache.js';
import { IndexCache } from '../../../segments/indexCache.js';
import { LogSegment, type ScanReport, type SegmentResources, type SegmentScanFacts } from '../../../segments/logSegment.js';

export interface RecoverSegmentInput {
  /** The partition directory. */
  dir: string;
  baseOffset: number;
  /** Bytes of the .log to scan (its size when the log was opened). */
  fileSizeBytes: number;
  indexIntervalBytes: number;
  maxIndexEntries: number;
  /** Offsets follow each other with no gap (a log that was never compacted). */
  contiguousOffsets: boolean;
  /**
   * The segment is sealed: sync its .log and write and sync its rebuilt indexes, since a later
   * flush of the active segment may carry the recovery point past it. The active segment's
   * indexes come back in the output instead (the log keeps them in memory and writes them at
   * close, as for any active segment); its bytes are synced by its next flush, and a crash before
   * then scans it again.
   */
  sealed: boolean;
}

export interface RecoverSegmentOutput {
  /** Bytes of whole, valid batches: the .log's length now. */
  validBytes: number;
  batches: number;
  /** Offset after the last valid batch. */
  nextOffset: number;
  /** The first bad batch, where the .log was cut; null when the whole file was valid. */
  failure: ScanReport['failure'];
  /** The active segment's rebuilt state (indexes included), so its log need not read it again. */
  active: SegmentScanFacts | null;
}

/** `signal`: the task's cancel; checked before the scan, never between the .log's cut and the index writes. */
export async function recoverSegmentFile(input: RecoverSegmentInput, signal?: AbortSignal): Promise<RecoverSegmentOutput> {
  signal?.throwIfAborted();
  // Blocking reads and writes: this runs on a worker thread (or, without a pool, in a test or a
  // tool), and each async call would cost a thread-pool hop for a few microseconds of work.
  const epochs = LeaderEpochCache.loadBlocking(input.dir);
  // Private to this call: the segment is opened here only to scan it, whichever thread this is.
  const resources: SegmentResources = { handles: new FileHandleCache(1), indexes: new IndexCache(1), notice: () => undefined };
  const limits = { indexIntervalBytes: input.indexIntervalBytes, maxIndexEntries: input.maxIndexEntries };
  const segment = LogSegment.existingOfSize(input.dir, input.baseOffset, input.fileSizeBytes, limits, resources);
  try {
    // Nothing else writes a log while it opens: a different size means another process is at it.
    const size = statSync(segment.logPath).size;
    if (size !== input.fileSizeBytes) throw new Error(`${segment.logPath} is ${size} bytes, not the ${input.fileSizeBytes} it had when its log was opened`);
    signal?.throwIfAborted();
    const rules = { contiguousOffsets: input.contiguousOffsets, expectedEpoch: (offset: number) => epochs.epochFor(offset) };
    const scan = await segment.scan(rules, { truncate: true, fileSizeBytes: input.fileSizeBytes, blockingIo: true });
    if (input.sealed) {
      await segment.syncLog();
      await segment.writeIndexes();
    }
    const active = input.sealed ? null : segment.scanFacts();
    return { validBytes: scan.validBytes, batches: scan.batches, nextOffset: scan.nextOffset, failure: scan.failure, active };
  } finally {
    await segment.close();
    await resources.handles.close();
  }
}
