// Walks the records of one (decompressed) record batch v2 area without building record objects:
// for each record, where its raw bytes lie, its offset and timestamp deltas, where its key lies
// and whether its value is null. The cleaner copies retained records' raw bytes unchanged (their
// deltas stay valid because a rewritten batch keeps its base offset and base timestamp), and the
// produce path uses it to refuse keyless records on compacted topics.
import { readVarint, readVarlong } from '../../../segments/varint.js';
import { RecordDecodeError } from '../../../segments/recordBatch.js';

export interface RecordView {
  /** Raw record bytes [start, end) in the area, length prefix included. */
  start: number;
  end: number;
  offsetDelta: number;
  timestampDelta: number;
  /** Key bytes [keyStart, keyEnd) in the area; keyStart is -1 for a null key. */
  keyStart: number;
  keyEnd: number;
  valueIsNull: boolean;
}

/**
 * Calls `visit` for each of `recordCount` records in `area`, reusing one view object. Throws
 * RecordDecodeError when a record runs past the area or the count does not match the bytes.
 */
export function walkRecords(area: Uint8Array, recordCount: number, visit: (record: RecordView) => void): void {
  const view: RecordView = { start: 0, end: 0, offsetDelta: 0, timestampDelta: 0, keyStart: -1, keyEnd: -1, valueIsNull: false };
  let cursor = 0;
  for (let i = 0; i < recordCount; i++) {
    const length = readVarint(area, cursor);
    const end = length.next + length.value;
    if (length.value < 0 || end > area.length) throw new RecordDecodeError(`record ${i} declares ${length.value} bytes past the end of its batch`);
    let position = length.next + 1; // record attributes: unused
    const timestampDelta = readVarlong(area, position, end);
    const offsetDelta = readVarint(area, timestampDelta.next, end);
    const keyLength = readVarint(area, offsetDelta.next, end);
    position = keyLength.next;
    if (keyLength.value < -1 || position + Math.max(keyLength.value, 0) > end) throw new RecordDecodeError(`record ${i} has a key of ${keyLength.value} bytes past its end`);
    view.keyStart = keyLength.value < 0 ? -1 : position;
    view.keyEnd = keyLength.value < 0 ? -1 : position + keyLength.value;
    position += Math.max(keyLength.value, 0);
    const valueLength = readVarint(area, position, end);
    if (valueLength.value < -1) throw new RecordDecodeError(`record ${i} has a value length of ${valueLength.value}`);
    view.start = cursor;
    view.end = end;
    view.offsetDelta = offsetDelta.value;
    view.timestampDelta = timestampDelta.value;
    view.valueIsNull = valueLength.value === -1;
    visit(view);
    cursor = end;
  }
  if (cursor !== area.length) throw new RecordDecodeError(`${area.length - cursor} bytes follow the batch's ${recordCount} records`);
}
