// Compaction, phase one (in a worker): the latest offset of every key over the dirty range of a
// log, in a KeyOffsetMap of bounded size. When the range holds more distinct keys than the map
// takes, the map stops at the first batch that does not fit: the range up to there is cleaned
// now and the rest in a later pass.
import { ATTRIBUTE_CONTROL, RECORDS_OFFSET, compressionOf, type BatchHeader } from '../../../segments/recordBatch.js';
import { decompress } from '../../../segments/compression.js';
import { segmentPath, LOG_SUFFIX } from '../../../segments/segmentNames.js';
import { KeyOffsetMap, hashKey } from './keyOffsetMap.js';
import { walkRecords } from './recordWalk.js';
import { CorruptSegmentError, forEachBatchInFile, type ReadBufferStats } from './compactBatches.js';

export interface SegmentToRead {
  baseOffset: number;
  sizeBytes: number;
}

export interface KeyMapResult {
  map: KeyOffsetMap;
  /** The map knows every key of [firstDirtyOffset, mapEndOffset); later records are not deduplicated. */
  mapEndOffset: number;
  recordsScanned: number;
  bytesScanned: number;
}

/** Stops the walk of a segment once the map is full (not an error). */
class MapFull extends Error {}

/**
 * Scans `segments` (oldest first) and maps each key of a record at an offset in
 * [firstDirtyOffset, cleanableEndOffset) to its latest offset. Control batches carry no keys.
 */
export async function buildKeyOffsetMap(dir: string, segments: readonly SegmentToRead[], firstDirtyOffset: number, cleanableEndOffset: number, mapBudgetBytes: number, stats: ReadBufferStats): Promise<KeyMapResult> {
  const map = new KeyOffsetMap(mapBudgetBytes);
  const hash = { high: 0, low: 0 };
  let mapEndOffset = cleanableEndOffset;
  let recordsScanned = 0;
  let bytesScanned = 0;
  for (const segment of segments) {
    const path = segmentPath(dir, segment.baseOffset, LOG_SUFFIX);
    try {
      await forEachBatchInFile(path, segment.sizeBytes, (buffer, position, header: BatchHeader, filePosition) => {
        const lastOffset = header.baseOffset + header.lastOffsetDelta;
        if (lastOffset < firstDirtyOffset || header.baseOffset >= cleanableEndOffset) return;
        bytesScanned += header.batchLength + 12;
        if ((header.attributes & ATTRIBUTE_CONTROL) !== 0) return;
        if (!map.hasRoomFor(header.recordCount)) {
          mapEndOffset = Math.max(header.baseOffset, firstDirtyOffset);
          throw new MapFull();
        }
        let area: Buffer;
        try {
          area = decompress(compressionOf(header.attributes), buffer.subarray(position + RECORDS_OFFSET, position + header.batchLength + 12));
          walkRecords(area, header.recordCount, (record) => {
            const offset = header.baseOffset + record.offsetDelta;
            recordsScanned++;
            if (offset < firstDirtyOffset || record.keyStart < 0) return;
            map.put(hashKey(area, record.keyStart, record.keyEnd, hash), offset);
          });
        } catch (error) {
          throw new CorruptSegmentError(path, filePosition, 'records', `records of the batch at offset ${header.baseOffset} do not decode: ${(error as Error).message}`);
        }
      }, stats);
    } catch (error) {
      if (error instanceof MapFull) break;
      throw error;
    }
  }
  return { map, mapEndOffset, recordsScanned, bytesScanned };
}
