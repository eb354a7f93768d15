// Compacted topics keep the latest record per key, so a record without a key has no place in
// them: Kafka refuses it at produce time (INVALID_RECORD), and so do we.
import { BATCH_LENGTH_OFFSET, LOG_OVERHEAD, RECORD_COUNT_OFFSET, RECORDS_OFFSET, ATTRIBUTES_OFFSET, compressionOf } from '../../segments/recordBatch.js';
import { decompress } from '../../segments/compression.js';
import { walkRecords } from './recordWalk.js';

/**
 * The position (batch, record) of the first record without a key in a produced record set, or
 * null when every record has one. Record sets that do not decode are left to the log's checks.
 */
export function firstKeylessRecord(records: Buffer): { batch: number; record: number } | null {
  let position = 0;
  let batchIndex = 0;
  try {
    while (position + RECORDS_OFFSET <= records.length) {
      const size = records.readInt32BE(position + BATCH_LENGTH_OFFSET) + LOG_OVERHEAD;
      if (size < RECORDS_OFFSET || position + size > records.length) return null;
      const area = decompress(compressionOf(records.readInt16BE(position + ATTRIBUTES_OFFSET)), records.subarray(position + RECORDS_OFFSET, position + size));
      let recordIndex = 0;
      let found = -1;
      walkRecords(area, records.readInt32BE(position + RECORD_COUNT_OFFSET), (record) => {
        if (found < 0 && record.keyStart < 0) found = recordIndex;
        recordIndex++;
      });
      if (found >= 0) return { batch: batchIndex, record: found };
      position += size;
      batchIndex++;
    }
  } catch {
    return null;
  }
  return null;
}
