// Checks the records area of one record batch v2 (already decompressed) against its header,
// without building record objects: every record's length, varints, key, value and headers must
// lie inside the record and the area, offset deltas must run as the header says, and exactly
// `recordCount` records must fill the area. Optionally: every record has a key (compacted
// topics) and every timestamp lies in a range (message.timestamp.before/after.max.ms).
//
// The walk is resumable (`RecordsWalk.step(maxRecords)`), so a caller can spread a large area over
// several turns of the event loop; a small one is checked in a single step. Nothing here throws
// on bad bytes: a problem comes back as a verdict naming the record.
import { CorruptCompressionError, DecompressionLimitError, UnsupportedCompressionError, compressionName, decompress } from './compression.js';

export type RecordsProblem =
  /** The bytes do not form `recordCount` well-formed records (Kafka: InvalidRecordException). */
  | 'malformed'
  /** A record without a key where keys are required. */
  | 'keyless'
  /** A record timestamp outside the allowed range. */
  | 'timestamp';

export interface RecordsRules {
  /** Records the batch header declares. */
  recordCount: number;
  /** The header's lastOffsetDelta: the last record's offset delta must equal it. */
  lastOffsetDelta: number;
  /**
   * true: offset deltas are exactly 0, 1, 2, ... (a producer's batch). false: strictly increasing
   * from >= 0 (a stored batch, which compaction may have thinned).
   */
  denseOffsetDeltas: boolean;
  /** The header's baseTimestamp: record timestamps are baseTimestamp + delta. */
  baseTimestamp: number;
  /** Refuse records whose key is null. */
  requireKeys: boolean;
  /** Record timestamps must lie in [min, max]; null checks nothing. */
  timestampRange: { min: number; max: number } | null;
}

export interface RecordsOk {
  ok: true;
  /** Largest record timestamp (baseTimestamp + largest delta). */
  maxTimestamp: number;
}

export interface RecordsRefused {
  ok: false;
  problem: RecordsProblem;
  /** Index of the offending record within the batch (Kafka's RecordError batchIndex); -1 when the batch as a whole is at fault. */
  recordIndex: number;
  detail: string;
}

export type RecordsVerdict = RecordsOk | RecordsRefused;

const NO_TIMESTAMP = -1;

/** Marks a varint that is malformed or runs past its end; real values are integers. */
const BAD = Number.NaN;

/**
 * Where the varint read last by zigzag() or zigzagShort() ends, or -1 when it was malformed or ran
 * past its end (then the value returned is 0). Module scratch: the walk is single-threaded and
 * never holds it across calls. Failures are signalled here rather than by NaN so that values stay
 * small integers, which keeps the walk on V8's fast integer paths.
 */
let varintEnd = 0;

/** A zigzag varint (32-bit, at most 5 bytes) at `position`, before `end`; sets varintEnd. */
function zigzag(area: Uint8Array, position: number, end: number): number {
  const short = zigzagShort(area, position, end);
  return varintEnd >= 0 ? short : zigzagLong(area, position, end);
}

/** A one- or two-byte zigzag varint (nearly all of a record's); varintEnd -1 when it is longer. */
function zigzagShort(area: Uint8Array, position: number, end: number): number {
  if (position < end) {
    const b0 = area[position]!;
    if (b0 < 0x80) {
      varintEnd = position + 1;
      return (b0 >>> 1) ^ -(b0 & 1);
    }
    if (position + 1 < end) {
      const b1 = area[position + 1]!;
      if (b1 < 0x80) {
        varintEnd = position + 2;
        const raw = (b0 & 0x7f) | (b1 << 7);
        return (raw >>> 1) ^ -(raw & 1);
      }
    }
  }
  varintEnd = -1;
  return 0;
}

function zigzagLong(area: Uint8Array, position: number, end: number): number {
  let result = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (position >= end) break;
    const byte = area[position++]!;
    if (shift === 28 && byte > 0x0f) break;
    result |= (byte & 0x7f) << shift;
    if (byte < 0x80) {
      varintEnd = position;
      return (result >>> 1) ^ -(result & 1);
    }
  }
  varintEnd = -1;
  return 0;
}

/**
 * A walk over one records area. step() checks up to `maxRecords` more records and returns the
 * verdict when the walk is over, or null when records remain.
 */
export class RecordsWalk {
  private cursor = 0;
  private index = 0;
  private previousDelta = -1;
  private maxDelta = Number.NEGATIVE_INFINITY;
  /** Position after the last varint read; only meaningful right after a read that returned a number. */
  private next = 0;

  constructor(
    private readonly area: Uint8Array,
    private readonly rules: RecordsRules,
  ) {}

  /** Checks the whole area at once. */
  static check(area: Uint8Array, rules: RecordsRules): RecordsVerdict {
    return new RecordsWalk(area, rules).step(Number.POSITIVE_INFINITY)!;
  }

  step(maxRecords: number): RecordsVerdict | null {
    const area = this.area;
    const rules = this.rules;
    const areaEnd = area.length;
    const stop = Math.min(rules.recordCount, this.index + maxRecords);
    const dense = rules.denseOffsetDeltas;
    const requireKeys = rules.requireKeys;
    const checkTimestamps = rules.timestampRange !== null;
    const baseTimestamp = rules.baseTimestamp;
    const minTimestamp = rules.timestampRange?.min ?? 0;
    const maxTimestamp = rules.timestampRange?.max ?? 0;
    let cursor = this.cursor;
    let previousDelta = this.previousDelta;
    let maxDelta = this.maxDelta;
    for (let i = this.index; i < stop; i++) {
      const length = zigzag(area, cursor, areaEnd);
      if (varintEnd < 0) return this.refuse('malformed', i, `record ${i}: its length varint is malformed or runs past the records area`);
      const start = varintEnd;
      const end = start + length;
      // A record holds at least attributes and five one-byte varints.
      if (length < 6 || end > areaEnd) return this.refuse('malformed', i, `record ${i} declares ${length} bytes; ${areaEnd - start} remain in the records area`);
      // Attributes (one byte, unused in v2), then the timestamp delta: a varlong, read as a varint
      // when it is that short (it nearly always is).
      let timestampDelta = zigzagShort(area, start + 1, end);
      if (varintEnd < 0) {
        timestampDelta = this.varlong(start + 1, end);
        if (Number.isNaN(timestampDelta)) return this.refuse('malformed', i, `record ${i}: its timestamp delta is malformed`);
        varintEnd = this.next;
      }
      const offsetDelta = zigzag(area, varintEnd, end);
      if (varintEnd < 0) return this.refuse('malformed', i, `record ${i}: its offset delta is malformed`);
      if (dense ? offsetDelta !== i : offsetDelta <= previousDelta) {
        return this.refuse('malformed', i, `record ${i} has offset delta ${offsetDelta}, expected ${dense ? i : `more than ${previousDelta}`}`);
      }
      previousDelta = offsetDelta;
      const keyLength = zigzag(area, varintEnd, end);
      let position = varintEnd;
      if (position < 0 || keyLength < -1 || position + (keyLength > 0 ? keyLength : 0) > end) return this.refuse('malformed', i, `record ${i}: key length ${keyLength} does not fit the record`);
      if (keyLength === -1 && requireKeys) return this.refuse('keyless', i, `record ${i} has no key`);
      if (keyLength > 0) position += keyLength;
      const valueLength = zigzag(area, position, end);
      position = varintEnd;
      if (position < 0 || valueLength < -1 || position + (valueLength > 0 ? valueLength : 0) > end) return this.refuse('malformed', i, `record ${i}: value length ${valueLength} does not fit the record`);
      if (valueLength > 0) position += valueLength;
      // The header count: the usual zero is the single byte 0 and ends the record.
      if (position + 1 !== end || area[position] !== 0) {
        const headersEnd = this.checkHeaders(position, end, i);
        if (headersEnd < 0) return { ok: false, problem: 'malformed', recordIndex: i, detail: this.headerProblem };
      }
      if (checkTimestamps) {
        const timestamp = baseTimestamp + timestampDelta;
        // A record without a timestamp (-1) is not checked, as in Kafka.
        if (timestamp !== NO_TIMESTAMP && (timestamp < minTimestamp || timestamp > maxTimestamp)) {
          return this.refuse('timestamp', i, `record ${i} has timestamp ${timestamp}, outside the accepted range [${minTimestamp}, ${maxTimestamp}]`);
        }
      }
      if (timestampDelta > maxDelta) maxDelta = timestampDelta;
      cursor = end;
    }
    this.cursor = cursor;
    this.index = stop;
    this.previousDelta = previousDelta;
    this.maxDelta = maxDelta;
    if (stop < rules.recordCount) return null;
    // Whole-batch disagreements: no single record is at fault (-1).
    if (cursor !== areaEnd) return this.refuse('malformed', -1, `${areaEnd - cursor} bytes follow the batch's ${rules.recordCount} records`);
    if (rules.recordCount > 0 && previousDelta !== rules.lastOffsetDelta) {
      return this.refuse('malformed', -1, `the last record's offset delta is ${previousDelta} but the batch header says ${rules.lastOffsetDelta}`);
    }
    return { ok: true, maxTimestamp: rules.recordCount === 0 ? -1 : rules.baseTimestamp + maxDelta };
  }

  /** Why checkHeaders refused, when it returned -1. */
  private headerProblem = '';

  /**
   * The header count and headers of record `i`, from `position` to the record's `end`: returns
   * `end` when they fill it exactly, else -1 with headerProblem set (and the walk refused).
   */
  private checkHeaders(position: number, end: number, i: number): number {
    const fail = (detail: string): number => {
      this.refuse('malformed', i, detail);
      this.headerProblem = detail;
      return -1;
    };
    const headerCount = this.varint(position, end);
    position = this.next;
    // Each header takes at least two bytes (two one-byte varints).
    if (Number.isNaN(headerCount) || headerCount < 0 || headerCount * 2 > end - position) return fail(`record ${i} declares ${headerCount} headers in ${end - position} bytes`);
    for (let h = 0; h < headerCount; h++) {
      const headerKeyLength = this.varint(position, end);
      position = this.next;
      if (Number.isNaN(headerKeyLength) || headerKeyLength < 0 || position + headerKeyLength > end) return fail(`record ${i}: header ${h} key length ${headerKeyLength} is null or does not fit the record`);
      position += headerKeyLength;
      const headerValueLength = this.varint(position, end);
      position = this.next;
      if (Number.isNaN(headerValueLength) || headerValueLength < -1 || position + Math.max(headerValueLength, 0) > end) return fail(`record ${i}: header ${h} value length ${headerValueLength} does not fit the record`);
      position += Math.max(headerValueLength, 0);
    }
    if (position !== end) return fail(`record ${i} has ${end - position} unexplained bytes after its headers`);
    return end;
  }

  private refuse(problem: RecordsProblem, recordIndex: number, detail: string): RecordsRefused {
    // A refused walk stays refused: later steps see no records left.
    this.index = this.rules.recordCount;
    return { ok: false, problem, recordIndex, detail };
  }

  /** A zigzag varint (at most 5 bytes, 32 bits) at `position`, or BAD; sets `next`. */
  private varint(position: number, end: number): number {
    const area = this.area;
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (position >= end) return BAD;
      const byte = area[position++]!;
      if (shift === 28 && byte > 0x0f) return BAD;
      result |= (byte & 0x7f) << shift;
      if (byte < 0x80) {
        this.next = position;
        return (result >>> 1) ^ -(result & 1);
      }
    }
    return BAD;
  }

  /** A zigzag varlong (at most 10 bytes) as a safe integer, or BAD; sets `next`. */
  private varlong(position: number, end: number): number {
    const area = this.area;
    let low = 0; // the first 28 bits, exact
    let high = 0; // the rest, as a multiple of 2^28
    for (let shift = 0; shift < 70; shift += 7) {
      if (position >= end) return BAD;
      const byte = area[position++]!;
      if (shift < 28) low |= (byte & 0x7f) << shift;
      else high += (byte & 0x7f) * 2 ** (shift - 28);
      if (byte < 0x80) {
        this.next = position;
        // Halve before combining: the zigzag form is twice the magnitude and may pass 2^53.
        const magnitude = high * 2 ** 27 + (low >>> 1);
        const value = (low & 1) === 0 ? magnitude : -magnitude - 1;
        return Number.isSafeInteger(value) ? value : BAD;
      }
    }
    return BAD;
  }
}

/** What checking a compressed (or plain) records area found, beyond the records themselves. */
export type AreaVerdict =
  | RecordsVerdict
  | { ok: false; problem: 'corrupt-compression' | 'unsupported-codec' | 'decompressed-too-large'; recordIndex: -1; detail: string };

/**
 * Decompresses a batch's records area (never past `limitBytes`) and walks it in one go: for worker
 * threads, and for callers that have no worker thread to send it to.
 */
export function checkRecordsArea(codec: number, data: Uint8Array, limitBytes: number, rules: RecordsRules): AreaVerdict {
  let area: Uint8Array;
  try {
    area = decompress(codec, data, limitBytes);
  } catch (error) {
    if (error instanceof DecompressionLimitError) return { ok: false, problem: 'decompressed-too-large', recordIndex: -1, detail: `the ${compressionName(codec) ?? codec} records area decompresses to more than ${limitBytes} bytes` };
    if (error instanceof UnsupportedCompressionError) return { ok: false, problem: 'unsupported-codec', recordIndex: -1, detail: `compression codec id ${codec} does not exist` };
    if (error instanceof CorruptCompressionError) return { ok: false, problem: 'corrupt-compression', recordIndex: -1, detail: error.message };
    throw error;
  }
  return RecordsWalk.check(area, rules);
}
