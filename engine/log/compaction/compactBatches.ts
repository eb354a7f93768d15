// Reading a sealed segment's batches in a worker, for the cleaner: the file in large chunks, every
// batch checked (structure and CRC-32C) and offsets required to increase. A bad batch stops the
// walk with a CorruptSegmentError naming file, position and problem; the cleaner then leaves the
// partition alone.
//
// Reads are synchronous on purpose: this runs on a worker thread, where blocking hurts nobody,
// and the kernel's copy out of the page cache then happens on this (low-priority) thread instead
// of the process's shared libuv pool, whose threads also serve the event loop's appends.
import { closeSync, openSync, readSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { BATCH_HEADER_BYTES, BATCH_LENGTH_OFFSET, LOG_OVERHEAD, checkBatch, type BatchHeader } from '../../../segments/recordBatch.js';
import { MAX_STORED_BATCH_BYTES } from '../../../segments/logSegment.js';

/** The cleaner reads segments in chunks of this size (grown for a larger batch); small enough not to sweep the CPU caches. */
export const CLEANER_READ_CHUNK_BYTES = 1024 * 1024;

export class CorruptSegmentError extends Error {
  override readonly name = 'CorruptSegmentError';
  constructor(
    readonly file: string,
    readonly position: number,
    readonly problem: string,
    readonly detail: string,
  ) {
    super(`corrupt batch in ${file} at position ${position}: ${problem}: ${detail}`);
  }
}

/** The cleaner sleeps in slices of at least this long when it reads ahead of its rate. */
const MIN_THROTTLE_SLEEP_MS = 5;

/**
 * Bounds a task's read rate (log.cleaner.io.max.bytes.per.second, as Kafka's cleaner does): reading
 * ahead of the rate sleeps. Work in bursts with pauses leaves the CPUs to the event loop.
 */
export class IoThrottle {
  private readonly startedMs = performance.now();
  private bytes = 0;

  /** `maxBytesPerSecond` 0: no limit. */
  constructor(private readonly maxBytesPerSecond: number) {}

  async account(bytes: number): Promise<void> {
    if (this.maxBytesPerSecond <= 0) return;
    this.bytes += bytes;
    const aheadMs = (this.bytes / this.maxBytesPerSecond) * 1000 - (performance.now() - this.startedMs);
    if (aheadMs >= MIN_THROTTLE_SLEEP_MS) await new Promise<void>((resolve) => setTimeout(resolve, aheadMs));
  }
}

/** What the walks of one task share: the read rate limit, and the largest read buffer (for the memory report). */
export interface ReadBufferStats {
  peakChunkBytes: number;
  throttle: IoThrottle;
}

/**
 * Calls `visit` with every batch of `path` up to `sizeBytes`, in order: the buffer holding it
 * (valid only during the call), its position there, its header and its position in the file.
 */
export async function forEachBatchInFile(
  path: string,
  sizeBytes: number,
  visit: (buffer: Buffer, position: number, header: BatchHeader, filePosition: number) => void | Promise<void>,
  stats: ReadBufferStats,
): Promise<void> {
  if (sizeBytes === 0) return;
  const fd = openSync(path, 'r');
  try {
    let chunk = Buffer.allocUnsafe(Math.min(CLEANER_READ_CHUNK_BYTES, Math.max(sizeBytes, BATCH_HEADER_BYTES)));
    let filePosition = 0;
    let previousLast = -1;
    while (filePosition < sizeBytes) {
      const want = Math.min(chunk.length, sizeBytes - filePosition);
      const bytesRead = readSync(fd, chunk, 0, want, filePosition);
      if (bytesRead === 0) throw new CorruptSegmentError(path, filePosition, 'truncated', `the file ends before its expected ${sizeBytes} bytes`);
      await stats.throttle.account(bytesRead);
      let cursor = 0;
      while (cursor < bytesRead) {
        const check = checkBatch(chunk, cursor, bytesRead, { maxBatchBytes: MAX_STORED_BATCH_BYTES });
        if (!check.ok && check.problem === 'truncated' && filePosition + bytesRead < sizeBytes) {
          // The batch continues past this chunk: read again from its start, with room for it whole.
          const declared = bytesRead - cursor >= LOG_OVERHEAD ? chunk.readInt32BE(cursor + BATCH_LENGTH_OFFSET) + LOG_OVERHEAD : BATCH_HEADER_BYTES;
          if (cursor === 0 && declared > sizeBytes - filePosition) throw new CorruptSegmentError(path, filePosition, 'truncated', `batch declares ${declared} bytes, ${sizeBytes - filePosition} remain`);
          if (declared > chunk.length) chunk = Buffer.allocUnsafe(declared);
          break;
        }
        if (!check.ok) throw new CorruptSegmentError(path, filePosition + cursor, check.problem, check.detail);
        const header = check.header;
        if (header.baseOffset <= previousLast) throw new CorruptSegmentError(path, filePosition + cursor, 'offset-chain', `base offset ${header.baseOffset} does not follow ${previousLast}`);
        previousLast = header.baseOffset + header.lastOffsetDelta;
        await visit(chunk, cursor, header, filePosition + cursor);
        cursor += check.size;
      }
      filePosition += cursor;
      stats.peakChunkBytes = Math.max(stats.peakChunkBytes, chunk.length);
    }
  } finally {
    closeSync(fd);
  }
}
