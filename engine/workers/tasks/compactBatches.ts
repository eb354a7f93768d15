// Reading a sealed segment's batches in a worker, for the cleaner: the file in large chunks, every
// batch checked (structure and CRC-32C) and offsets required to increase. A bad batch stops the
// walk with a CorruptSegmentError naming file, position and problem; the cleaner then leaves the
// partition alone.
import { open } from 'node:fs/promises';
import { BATCH_HEADER_BYTES, BATCH_LENGTH_OFFSET, LOG_OVERHEAD, checkBatch, type BatchHeader } from '../../../segments/recordBatch.js';
import { MAX_STORED_BATCH_BYTES } from '../../../segments/logSegment.js';

/** The cleaner reads segments in chunks of this size (grown for a larger batch). */
export const CLEANER_READ_CHUNK_BYTES = 8 * 1024 * 1024;

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

/** Tracks the largest read buffer a walk used, for the memory report. */
export interface ReadBufferStats {
  peakChunkBytes: number;
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
  const handle = await open(path, 'r');
  try {
    let chunk = Buffer.allocUnsafe(Math.min(CLEANER_READ_CHUNK_BYTES, Math.max(sizeBytes, BATCH_HEADER_BYTES)));
    let filePosition = 0;
    let previousLast = -1;
    while (filePosition < sizeBytes) {
      const want = Math.min(chunk.length, sizeBytes - filePosition);
      const { bytesRead } = await handle.read(chunk, 0, want, filePosition);
      if (bytesRead === 0) throw new CorruptSegmentError(path, filePosition, 'truncated', `the file ends before its expected ${sizeBytes} bytes`);
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
    await handle.close();
  }
}
