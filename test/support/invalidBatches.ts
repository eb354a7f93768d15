// Invalid record batches for the Produce validation tests: a seeded generator of batches that each
// have exactly one thing wrong (every rule of the produce validation contract in turn, for
// uncompressed batches and for every codec), the batches over max.message.bytes and the
// compression bombs, as a list and as an unbounded stream. The rest of the generator lives beside
// it: batchDraft.ts (good records, record layouts, drafts, the batch writer, and the valid batches
// for control), codecFrames.ts (each codec's compression, and compressed areas broken) and
// referenceValidator.ts (the contract written out plainly, an oracle for the generator's checks).
//
// How a case is made: random good records (keys, values, headers, timestamps near the clock),
// laid out field by field (each varint kept as its own bytes), one field broken, the records area
// compressed with the case's codec, the batch header written, and the CRC-32C computed over the
// result. Every CRC is right except in the cases of the field `crc`: the point is that the
// contents are wrong while the CRC vouches for them.
//
// What a case expects (Produce partition error codes, protocol/errors.ts):
//   CORRUPT_MESSAGE        lengths, magic >= 3 or < 0, the CRC, codec ids 5-7, compressed areas that
//                          do not decode (truncated, garbage, flipped bytes)
//   UNSUPPORTED_FOR_MESSAGE_FORMAT  magic 0 or 1
//   MESSAGE_TOO_LARGE      batch over max.message.bytes; areas decoding to more than the
//                          decompressed limit (the bombs)
//   INVALID_RECORD         counts, offsets, record structure, producer fields, attributes, keyless
//                          records on compacted topics
//   INVALID_TIMESTAMP      record timestamps outside message.timestamp.{after,before}.max.ms
// `recordIndex`: a record-level refusal Kafka reports in recordErrors (KIP-467): v8 must answer
// exactly [{ batchIndex: recordIndex }]. `possibleRecordIndex`: a refusal the decoder meets at one
// record (structure errors); whether it is reported per record is the broker's choice, so v8 must
// answer [] or [{ batchIndex: possibleRecordIndex }]. Neither: a batch-level refusal, [] expected.
//
// Flipped bytes in formats without a checksum (raw snappy, xerial, LZ4 block data, zstd frames
// without a content checksum) may still decode: such a case is `mayBeAccepted` and only says the
// batch is refused with CORRUPT_MESSAGE or INVALID_RECORD (or INVALID_TIMESTAMP, when the flip lands
// in a timestamp delta), or, if accepted, reads back byte for byte. Flips never touch a field that
// declares a decompressed size, so MESSAGE_TOO_LARGE is not a possible answer to them. Flips in
// gzip (CRC-32 and length trailer) and in the LZ4 header checksum must be refused outright.
//
// Bombs are built once per process and limit (they take up to a few hundred ms each) and cached.
import { gzipSync } from 'node:zlib';
import lz4 from 'lz4js';
import { ErrorCode } from '../../protocol/errors.js';
import {
  ATTRIBUTE_CONTROL,
  ATTRIBUTE_DELETE_HORIZON,
  ATTRIBUTE_TRANSACTIONAL,
  BATCH_LENGTH_OFFSET,
  CRC_OFFSET,
  LOG_OVERHEAD,
  MAGIC_OFFSET,
  RECORDS_OFFSET,
} from '../../segments/recordBatch.js';
import { readVarint } from '../../segments/varint.js';
import {
  bodyOf,
  bytesAfter,
  draftOf,
  encodeLayout,
  finish,
  goodRecords,
  headerBytes,
  overlongVarint,
  recordsArea,
  text,
  varint,
  withCrc,
  writeBatch,
  type Draft,
  type GoodRecord,
  type HeaderLayout,
  type RecordLayout,
  type RecordOptions,
} from './batchDraft.js';
import {
  CASE_CODECS,
  COMPRESSED_CODECS,
  codecId,
  encodeUnsignedVarint,
  flipCompressed,
  garbageFor,
  snappyRaw,
  truncationPoint,
  xerialFrame,
  zstdZeros,
  type CaseCodec,
  type Flip,
} from './codecFrames.js';
import { SeededRandom } from './random.js';

// ---------------------------------------------------------------------------------------------
// Cases and the topics they are sent to

/**
 * The topic a case is sent to: `default` (CreateTime, delete, Kafka's defaults), `compacted`
 * (cleanup.policy=compact), `strictTimestamps` (message.timestamp.before.max.ms=86400000).
 */
export type CaseTopic = 'default' | 'compacted' | 'strictTimestamps';

/** message.timestamp.before.max.ms of the `strictTimestamps` topic. */
export const STRICT_TIMESTAMP_BEFORE_MAX_MS = 86_400_000;
/** Kafka's default message.timestamp.after.max.ms. */
export const DEFAULT_TIMESTAMP_AFTER_MAX_MS = 3_600_000;
/** Kafka's default max.message.bytes. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;

export interface InvalidBatchCase {
  /** Unique within a list: `<field> [<codec>] #<variant>: <what exactly>`. */
  name: string;
  /** The rule the case breaks (tests are grouped by it). */
  field: string;
  codec: CaseCodec;
  batch: Buffer;
  /** The Produce partition error code. */
  expected: number;
  topic?: CaseTopic;
  /** recordErrors of a v8 answer must be exactly [{ batchIndex: recordIndex }]. */
  recordIndex?: number;
  /** recordErrors of a v8 answer must be [] or [{ batchIndex: possibleRecordIndex }]. */
  possibleRecordIndex?: number;
  /** Other refusal codes that are right too (flipped bytes only). */
  alsoAcceptable?: readonly number[];
  /** Flipped bytes without a checksum: the batch may decode; if accepted it must read back byte for byte. */
  mayBeAccepted?: boolean;
  /** A bomb or an oversized batch: large to send or to decode. */
  heavy?: boolean;
}

export interface GeneratorOptions {
  /** The broker's clock (ms), read for every case: timestamps are drawn around it. */
  nowMs?: () => number;
  /** Random variants of each field for each codec (default 3). */
  variants?: number;
  codecs?: readonly CaseCodec[];
  /** max.message.bytes of the topics (default Kafka's 1048588). */
  maxMessageBytes?: number;
  /**
   * decompressedBatchLimit(maxMessageBytes) of the broker under test: the bombs are sized from it.
   * Without it no bomb is generated.
   */
  decompressedLimitBytes?: number;
  /** Oversized batches and bombs (default: true). */
  includeHeavy?: boolean;
}

// ---------------------------------------------------------------------------------------------
// The rules, each broken in turn

interface BreakContext {
  rng: SeededRandom;
  codec: CaseCodec;
  nowMs: number;
}

type Broken = Omit<InvalidBatchCase, 'name' | 'field' | 'codec'> & { detail: string };

interface Breaker {
  field: string;
  /** Codecs it applies to (default: all). */
  codecs?: readonly CaseCodec[];
  make(context: BreakContext): Broken;
}

function records(context: BreakContext, options: RecordOptions = {}): GoodRecord[] {
  return goodRecords(context.rng, { nowMs: context.nowMs, ...options });
}

function draft(context: BreakContext, options: RecordOptions = {}): Draft {
  return draftOf(records(context, options), context.codec);
}

function pickIndex(rng: SeededRandom, items: readonly unknown[]): number {
  return rng.int(0, items.length - 1);
}

function randomNegative(rng: SeededRandom, min = -0x80000000): number {
  return rng.pick([-1, -2, rng.int(-1000, -1), rng.int(min, -1), min]);
}

/** A length field below -1 (-1 means null, so a draw of -1 becomes -2). */
function lengthBelowMinusOne(rng: SeededRandom): number {
  const length = randomNegative(rng);
  return length === -1 ? -2 : length;
}

/** A length field reaching past the `available` bytes: by one, by a few, or up to 2^31-1. */
function lengthPast(rng: SeededRandom, available: number): number {
  return available + rng.pick([1, rng.int(2, 64), 0x7fffffff - available]);
}

/** One record of the draft broken by `mutate`; the case names the record. */
function recordBreak(context: BreakContext, expected: number, mutate: (layout: RecordLayout, draft: Draft, index: number) => string, options: RecordOptions & { required?: boolean } = {}): Broken {
  const base = draft(context, options);
  const index = pickIndex(context.rng, base.layouts);
  const detail = mutate(base.layouts[index]!, base, index);
  const indexField = options.required === true ? { recordIndex: index } : { possibleRecordIndex: index };
  return { batch: finish(base, context.rng), expected, ...indexField, detail: `record ${index} of ${base.layouts.length}: ${detail}` };
}

/** A record that has at least one header (one is added when it has none). */
function ensureHeader(context: BreakContext, layout: RecordLayout): HeaderLayout {
  if (layout.headers.length === 0) {
    const key = text(context.rng, context.rng.int(1, 8));
    const value = context.rng.bytes(context.rng.int(0, 12));
    layout.headers.push({ keyLength: varint(key.length), key, valueLength: varint(value.length), value });
    layout.headerCount = varint(layout.headers.length);
  }
  return layout.headers[pickIndex(context.rng, layout.headers)]!;
}

function headerBreak(context: BreakContext, mutate: (header: HeaderLayout, layout: RecordLayout, rng: SeededRandom) => string): Broken {
  return recordBreak(context, ErrorCode.INVALID_RECORD, (layout) => {
    const header = ensureHeader(context, layout);
    return `header ${layout.headers.indexOf(header)} of ${layout.headers.length}: ${mutate(header, layout, context.rng)}`;
  });
}

/** Bytes of the record after header `header`'s key length field, up to the record's end. */
function bytesAfterHeaderKeyLength(layout: RecordLayout, header: HeaderLayout): number {
  const at = layout.headers.indexOf(header);
  const later = layout.headers.slice(at + 1).reduce((sum, other) => sum + headerBytes(other).length, 0);
  return header.key.length + header.valueLength.length + header.value.length + later + layout.trailing.length;
}

function bytesAfterHeaderValueLength(layout: RecordLayout, header: HeaderLayout): number {
  return bytesAfterHeaderKeyLength(layout, header) - header.key.length - header.valueLength.length;
}

function headerFieldBreak(context: BreakContext, field: (draft: Draft, rng: SeededRandom) => string, expected: number = ErrorCode.INVALID_RECORD, options: RecordOptions = {}): Broken {
  const base = draft(context, options);
  const detail = field(base, context.rng);
  return { batch: finish(base, context.rng), expected, detail };
}

/** Writes `mutate`'s changes into the finished batch's header and recomputes the CRC. */
function patchedBatch(context: BreakContext, mutate: (batch: Buffer) => string, options: RecordOptions = {}): { batch: Buffer; detail: string } {
  const batch = finish(draft(context, options), context.rng);
  const detail = mutate(batch);
  return { batch: withCrc(batch), detail };
}

const BREAKERS: readonly Breaker[] = [
  // --- CORRUPT_MESSAGE: lengths, magic, CRC, codec ------------------------------------------
  {
    field: 'batchLength smaller than a batch header',
    make(context) {
      const { rng } = context;
      const batch = finish(draft(context), rng);
      const batchLength = rng.pick([rng.int(0, RECORDS_OFFSET - LOG_OVERHEAD - 1), RECORDS_OFFSET - LOG_OVERHEAD - 1, 0, randomNegative(rng)]);
      batch.writeInt32BE(batchLength, BATCH_LENGTH_OFFSET);
      // The record set as the client framed it: the whole buffer, or cut where batchLength says.
      const cut = rng.bool(0.5) && batchLength >= 0;
      const sent = withCrc(cut ? Buffer.from(batch.subarray(0, batchLength + LOG_OVERHEAD)) : batch);
      return { batch: sent, expected: ErrorCode.CORRUPT_MESSAGE, detail: `batchLength ${batchLength}, ${sent.length} bytes sent` };
    },
  },
  {
    field: 'batchLength past the bytes present (truncated)',
    make(context) {
      const { rng } = context;
      const batch = finish(draft(context), rng);
      if (rng.bool(0.5)) {
        // A batch cut short: its header (and CRC) as written, fewer bytes than it declares.
        const size = rng.pick([rng.int(0, batch.length - 1), rng.int(0, RECORDS_OFFSET - 1), batch.length - 1]);
        return { batch: Buffer.from(batch.subarray(0, size)), expected: ErrorCode.CORRUPT_MESSAGE, detail: `${size} of ${batch.length} bytes sent` };
      }
      const claimed = rng.pick([batch.length - LOG_OVERHEAD + 1, batch.length - LOG_OVERHEAD + rng.int(2, 1_000_000), 0x7fffffff]);
      batch.writeInt32BE(claimed, BATCH_LENGTH_OFFSET);
      return { batch: withCrc(batch), expected: ErrorCode.CORRUPT_MESSAGE, detail: `batchLength ${claimed} with ${batch.length - LOG_OVERHEAD} bytes after it` };
    },
  },
  {
    field: 'magic 3 or more, or negative',
    make(context) {
      const magic = context.rng.pick([3, context.rng.int(3, 127), 127, -1, context.rng.int(-128, -1), -128]);
      return { ...patchedBatch(context, (batch) => (batch.writeInt8(magic, MAGIC_OFFSET), `magic ${magic}`)), expected: ErrorCode.CORRUPT_MESSAGE };
    },
  },
  {
    field: 'magic 0 or 1 (legacy message format)',
    make(context) {
      const magic = context.rng.int(0, 1);
      return { ...patchedBatch(context, (batch) => (batch.writeInt8(magic, MAGIC_OFFSET), `magic ${magic}`)), expected: ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT };
    },
  },
  {
    field: 'crc',
    make(context) {
      // The one rule whose cases carry a wrong CRC: the CRC field itself is changed.
      const batch = finish(draft(context), context.rng);
      const right = batch.readUInt32BE(CRC_OFFSET);
      const wrong = (right ^ context.rng.pick([1, 0x80000000, context.rng.int(1, 0xffffffff)])) >>> 0;
      batch.writeUInt32BE(wrong, CRC_OFFSET);
      return { batch, expected: ErrorCode.CORRUPT_MESSAGE, detail: `CRC 0x${wrong.toString(16)} instead of 0x${right.toString(16)}` };
    },
  },
  {
    field: 'compression codec id 5, 6 or 7',
    codecs: ['none'],
    make(context) {
      const id = context.rng.int(5, 7);
      const base = draft(context);
      base.fields.attributes = (base.fields.attributes & ~0x07) | id;
      return { batch: finish(base, context.rng), expected: ErrorCode.CORRUPT_MESSAGE, detail: `codec id ${id}` };
    },
  },

  // --- INVALID_RECORD: counts and offsets ----------------------------------------------------
  {
    field: 'recordCount 0 or negative',
    make(context) {
      const { rng } = context;
      if (rng.bool(0.25)) {
        const base = draftOf([], context.codec);
        base.fields.lastOffsetDelta = rng.pick([0, -1]);
        return { batch: finish(base, rng), expected: ErrorCode.INVALID_RECORD, detail: `no records, recordCount 0, lastOffsetDelta ${base.fields.lastOffsetDelta}` };
      }
      return headerFieldBreak(context, (base) => {
        base.fields.recordCount = rng.pick([0, randomNegative(rng)]);
        return `recordCount ${base.fields.recordCount} with ${base.layouts.length} records`;
      });
    },
  },
  {
    field: 'recordCount not lastOffsetDelta + 1',
    make(context) {
      const { rng } = context;
      return headerFieldBreak(context, (base) => {
        const n = base.layouts.length;
        switch (rng.int(0, 2)) {
          case 0:
            base.fields.lastOffsetDelta = rng.pick([n, n - 1 + rng.int(2, 1000), 0x7fffffff]);
            break;
          case 1:
            base.fields.recordCount = rng.pick([n + 1, n + rng.int(2, 1000), 0x7fffffff]);
            break;
          default:
            base.fields.lastOffsetDelta = n - 1 + rng.int(1, 50);
            base.fields.recordCount = base.fields.lastOffsetDelta + 1 + rng.pick([-1, 1, rng.int(2, 20)]);
        }
        return `recordCount ${base.fields.recordCount}, lastOffsetDelta ${base.fields.lastOffsetDelta}, ${n} records`;
      });
    },
  },
  {
    field: 'lastOffsetDelta negative',
    make(context) {
      return headerFieldBreak(context, (base, rng) => {
        base.fields.lastOffsetDelta = randomNegative(rng);
        return `lastOffsetDelta ${base.fields.lastOffsetDelta} with ${base.layouts.length} records`;
      });
    },
  },
  {
    field: 'fewer records than recordCount',
    make(context) {
      const base = draft(context);
      const n = base.layouts.length;
      // Up to a count of 2^31-1: a header consistent in itself that once moved a log end by 2^31-1.
      const missing = context.rng.pick([1, context.rng.int(1, 10), 1000, 0x7fffffff - n]);
      base.fields.recordCount = n + missing;
      base.fields.lastOffsetDelta = n + missing - 1;
      return { batch: finish(base, context.rng), expected: ErrorCode.INVALID_RECORD, possibleRecordIndex: n, detail: `recordCount ${n + missing} (lastOffsetDelta agrees), ${n} records` };
    },
  },
  {
    field: 'bytes left over after recordCount records',
    make(context) {
      const { rng } = context;
      const base = draft(context, { count: rng.int(2, 8) });
      const n = base.layouts.length;
      if (rng.bool(0.5)) {
        const declared = rng.int(1, n - 1);
        base.fields.recordCount = declared;
        base.fields.lastOffsetDelta = declared - 1;
        base.fields.maxTimestamp = Math.max(...base.records.slice(0, declared).map((record) => record.timestamp));
        return { batch: finish(base, rng), expected: ErrorCode.INVALID_RECORD, detail: `recordCount ${declared} (lastOffsetDelta agrees), ${n} records in the area` };
      }
      base.trailing = rng.pick([Buffer.from([0]), rng.bytes(rng.int(1, 40))]);
      return { batch: finish(base, rng), expected: ErrorCode.INVALID_RECORD, detail: `${base.trailing.length} bytes after the last of ${n} records` };
    },
  },
  {
    field: 'record offset deltas not 0, 1, 2, ...',
    make(context) {
      return recordBreak(context, ErrorCode.INVALID_RECORD, (layout, _draft, index) => {
        const { rng } = context;
        const options = [index + 1, index + rng.int(2, 1000), -1, rng.int(-0x80000000, -1), 0x7fffffff];
        if (index > 0) options.push(index - 1, 0);
        const delta = rng.pick(options);
        layout.offsetDelta = varint(delta);
        return `offsetDelta ${delta}`;
      });
    },
  },

  // --- INVALID_RECORD: record structure ------------------------------------------------------
  {
    field: 'record length negative',
    make(context) {
      return recordBreak(context, ErrorCode.INVALID_RECORD, (layout) => {
        const length = randomNegative(context.rng);
        layout.length = varint(length);
        return `length ${length}`;
      });
    },
  },
  {
    field: 'record length past the records area',
    make(context) {
      return recordBreak(context, ErrorCode.INVALID_RECORD, (layout, base, index) => {
        const after = base.layouts.slice(index + 1).reduce((sum, other) => sum + encodeLayout(other).length, 0) + base.trailing.length;
        const length = bodyOf(layout).length + after + context.rng.pick([1, context.rng.int(2, 100), 0x7fffffff - bodyOf(layout).length - after]);
        layout.length = varint(length);
        return `length ${length}, ${bodyOf(layout).length + after} bytes left`;
      });
    },
  },
  {
    field: 'record length shorter than its fields',
    make(context) {
      return recordBreak(context, ErrorCode.INVALID_RECORD, (layout) => {
        const body = bodyOf(layout).length;
        const length = body - context.rng.int(1, body);
        layout.length = varint(length);
        return `length ${length}, fields of ${body} bytes`;
      });
    },
  },
  {
    field: 'varint longer than 5 bytes',
    make(context) {
      return recordBreak(context, ErrorCode.INVALID_RECORD, (layout) => {
        const { rng } = context;
        const bytes = rng.int(6, 10);
        const fields: Array<[string, () => void]> = [
          ['length', () => (layout.length = overlongVarint(bodyOf(layout).length, bytes))],
          ['offsetDelta', () => (layout.offsetDelta = overlongVarint(readVarint(layout.offsetDelta, 0).value, bytes))],
          ['keyLength', () => (layout.keyLength = overlongVarint(readVarint(layout.keyLength, 0).value, bytes))],
          ['valueLength', () => (layout.valueLength = overlongVarint(readVarint(layout.valueLength, 0).value, bytes))],
          ['headerCount', () => (layout.headerCount = overlongVarint(layout.headers.length, bytes))],
        ];
        if (layout.headers.length > 0) {
          const header = layout.headers[pickIndex(rng, layout.headers)]!;
          fields.push(['header keyLength', () => (header.keyLength = overlongVarint(header.key.length, bytes))]);
          fields.push(['header valueLength', () => (header.valueLength = overlongVarint(readVarint(header.valueLength, 0).value, bytes))]);
        }
        const [name, apply] = rng.pick(fields);
        apply();
        return `${name} as a ${bytes}-byte varint`;
      });
    },
  },
  {
    field: 'keyLength below -1',
    make(context) {
      return recordBreak(context, ErrorCode.INVALID_RECORD, (layout) => {
        const keyLength = lengthBelowMinusOne(context.rng);
        layout.keyLength = varint(keyLength);
        return `keyLength ${keyLength}`;
      });
    },
  },
  {
    field: "keyLength past the record's end",
    make(context) {
      return recordBreak(context, ErrorCode.INVALID_RECORD, (layout) => {
        const available = bytesAfter(layout, 'keyLength');
        const keyLength = lengthPast(context.rng, available);
        layout.keyLength = varint(keyLength);
        return `keyLength ${keyLength}, ${available} bytes left in the record`;
      });
    },
  },
  {
    field: 'valueLength below -1',
    make(context) {
      return recordBreak(context, ErrorCode.INVALID_RECORD, (layout) => {
        const valueLength = lengthBelowMinusOne(context.rng);
        layout.valueLength = varint(valueLength);
        return `valueLength ${valueLength}`;
      });
    },
  },
  {
    field: "valueLength past the record's end",
    make(context) {
      return recordBreak(context, ErrorCode.INVALID_RECORD, (layout) => {
        const available = bytesAfter(layout, 'valueLength');
        const valueLength = lengthPast(context.rng, available);
        layout.valueLength = varint(valueLength);
        return `valueLength ${valueLength}, ${available} bytes left in the record`;
      });
    },
  },
  {
    field: 'headerCount negative',
    make(context) {
      return recordBreak(context, ErrorCode.INVALID_RECORD, (layout) => {
        const count = randomNegative(context.rng);
        layout.headerCount = varint(count);
        return `headerCount ${count} (${layout.headers.length} headers present)`;
      });
    },
  },
  {
    field: 'headerCount more than the bytes allow',
    make(context) {
      return recordBreak(context, ErrorCode.INVALID_RECORD, (layout) => {
        const available = bytesAfter(layout, 'headerCount');
        const count = layout.headers.length + context.rng.pick([1, context.rng.int(2, 1000), 0x7fffffff - layout.headers.length]);
        layout.headerCount = varint(count);
        return `headerCount ${count}, ${layout.headers.length} headers in ${available} bytes`;
      });
    },
  },
  {
    field: 'header with a null key',
    make(context) {
      return headerBreak(context, (header) => {
        header.keyLength = varint(-1);
        header.key = Buffer.alloc(0);
        return 'keyLength -1';
      });
    },
  },
  {
    field: 'header keyLength below -1',
    make(context) {
      return headerBreak(context, (header, _layout, rng) => {
        const keyLength = lengthBelowMinusOne(rng);
        header.keyLength = varint(keyLength);
        return `keyLength ${keyLength}`;
      });
    },
  },
  {
    field: "header keyLength past the record's end",
    make(context) {
      return headerBreak(context, (header, layout, rng) => {
        const available = bytesAfterHeaderKeyLength(layout, header);
        const keyLength = lengthPast(rng, available);
        header.keyLength = varint(keyLength);
        return `keyLength ${keyLength}, ${available} bytes left in the record`;
      });
    },
  },
  {
    field: 'header valueLength below -1',
    make(context) {
      return headerBreak(context, (header, _layout, rng) => {
        const valueLength = lengthBelowMinusOne(rng);
        header.valueLength = varint(valueLength);
        return `valueLength ${valueLength}`;
      });
    },
  },
  {
    field: "header valueLength past the record's end",
    make(context) {
      return headerBreak(context, (header, layout, rng) => {
        const available = bytesAfterHeaderValueLength(layout, header);
        const valueLength = lengthPast(rng, available);
        header.valueLength = varint(valueLength);
        return `valueLength ${valueLength}, ${available} bytes left in the record`;
      });
    },
  },
  {
    field: 'unexplained bytes after the headers',
    make(context) {
      return recordBreak(context, ErrorCode.INVALID_RECORD, (layout) => {
        layout.trailing = context.rng.pick([Buffer.from([0]), context.rng.bytes(context.rng.int(1, 20))]);
        return `${layout.trailing.length} bytes after ${layout.headers.length} headers, counted by the length`;
      });
    },
  },

  // --- INVALID_RECORD: attributes and producer fields ----------------------------------------
  {
    field: 'control flag set by a client',
    make(context) {
      return headerFieldBreak(context, (base) => {
        base.fields.attributes |= ATTRIBUTE_CONTROL;
        return `attributes 0x${base.fields.attributes.toString(16)}`;
      });
    },
  },
  {
    field: 'transactional flag without a producer id',
    make(context) {
      return headerFieldBreak(context, (base, rng) => {
        base.fields.attributes |= ATTRIBUTE_TRANSACTIONAL;
        base.fields.producerEpoch = rng.pick([-1, rng.int(0, 100)]);
        base.fields.baseSequence = rng.pick([-1, rng.int(0, 1000)]);
        return `attributes 0x${base.fields.attributes.toString(16)}, producerId -1, epoch ${base.fields.producerEpoch}, sequence ${base.fields.baseSequence}`;
      });
    },
  },
  {
    field: 'producer id with a negative baseSequence',
    make(context) {
      return headerFieldBreak(context, (base, rng) => {
        base.fields.producerId = rng.pick([0, rng.int(1, 1_000_000_000), Number.MAX_SAFE_INTEGER]);
        base.fields.producerEpoch = rng.int(0, 32767);
        base.fields.baseSequence = randomNegative(rng);
        return `producerId ${base.fields.producerId}, epoch ${base.fields.producerEpoch}, baseSequence ${base.fields.baseSequence}`;
      });
    },
  },
  {
    field: 'producer id with a negative producerEpoch',
    make(context) {
      return headerFieldBreak(context, (base, rng) => {
        base.fields.producerId = rng.pick([0, rng.int(1, 1_000_000_000)]);
        base.fields.producerEpoch = randomNegative(rng, -0x8000);
        base.fields.baseSequence = rng.int(0, 1000);
        return `producerId ${base.fields.producerId}, epoch ${base.fields.producerEpoch}, baseSequence ${base.fields.baseSequence}`;
      });
    },
  },
  {
    field: 'producerId below -1',
    make(context) {
      return headerFieldBreak(context, (base, rng) => {
        base.fields.producerId = rng.pick([-2, rng.int(-1_000_000, -2), Number.MIN_SAFE_INTEGER]);
        if (rng.bool(0.5)) {
          base.fields.producerEpoch = rng.int(0, 100);
          base.fields.baseSequence = rng.int(0, 1000);
        }
        return `producerId ${base.fields.producerId}, epoch ${base.fields.producerEpoch}, baseSequence ${base.fields.baseSequence}`;
      });
    },
  },
  {
    field: 'delete horizon flag set',
    make(context) {
      return headerFieldBreak(context, (base) => {
        base.fields.attributes |= ATTRIBUTE_DELETE_HORIZON;
        return `attributes 0x${base.fields.attributes.toString(16)}`;
      });
    },
  },
  {
    field: 'keyless record on a compacted topic',
    make(context) {
      const base = draft(context, { keyed: true });
      const index = pickIndex(context.rng, base.layouts);
      base.layouts[index]!.keyLength = varint(-1);
      base.layouts[index]!.key = Buffer.alloc(0);
      return { batch: finish(base, context.rng), expected: ErrorCode.INVALID_RECORD, topic: 'compacted', recordIndex: index, detail: `record ${index} of ${base.layouts.length} has no key` };
    },
  },

  // --- INVALID_TIMESTAMP -----------------------------------------------------------------------
  {
    field: 'timestamp ahead of message.timestamp.after.max.ms',
    make(context) {
      const { rng } = context;
      const list = records(context);
      const index = pickIndex(rng, list);
      // At least 30 minutes past the bound, so the time the test takes cannot bring it back in.
      const ahead = DEFAULT_TIMESTAMP_AFTER_MAX_MS + rng.pick([30 * 60_000, rng.int(30 * 60_000, 30 * 86_400_000), 365 * 86_400_000]);
      list[index]!.timestamp = context.nowMs + ahead;
      return { batch: finish(draftOf(list, context.codec), rng), expected: ErrorCode.INVALID_TIMESTAMP, recordIndex: index, detail: `record ${index} of ${list.length} is ${ahead} ms ahead` };
    },
  },
  {
    field: 'timestamp behind message.timestamp.before.max.ms',
    make(context) {
      const { rng } = context;
      const list = records(context);
      const index = pickIndex(rng, list);
      const behind = rng.pick([2 * 86_400_000, STRICT_TIMESTAMP_BEFORE_MAX_MS + rng.int(30 * 60_000, 365 * 86_400_000)]);
      list[index]!.timestamp = context.nowMs - behind;
      return { batch: finish(draftOf(list, context.codec), rng), expected: ErrorCode.INVALID_TIMESTAMP, topic: 'strictTimestamps', recordIndex: index, detail: `record ${index} of ${list.length} is ${behind} ms old` };
    },
  },

  // --- Compressed areas that do not decode -----------------------------------------------------
  {
    field: 'compressed area truncated',
    codecs: COMPRESSED_CODECS,
    make(context) {
      const { rng, codec } = context;
      let detail = '';
      const batch = finish(draft(context), rng, (area) => {
        const cut = truncationPoint(rng, codec, area);
        detail = `${cut} of ${area.length} compressed bytes`;
        return area.subarray(0, cut);
      });
      return { batch, expected: ErrorCode.CORRUPT_MESSAGE, detail };
    },
  },
  {
    field: 'compressed area is garbage',
    codecs: COMPRESSED_CODECS,
    make(context) {
      const { rng, codec } = context;
      const base = draft(context);
      const garbage = garbageFor(rng, codec, recordsArea(base).length);
      return { batch: writeBatch(base.fields, garbage.bytes), expected: ErrorCode.CORRUPT_MESSAGE, detail: garbage.detail };
    },
  },
  {
    field: 'compressed area with flipped bytes',
    codecs: COMPRESSED_CODECS,
    make(context) {
      const { rng, codec } = context;
      let flipped: Flip = { area: Buffer.alloc(0), detail: '', strict: false };
      const batch = finish(draft(context), rng, (area) => {
        flipped = flipCompressed(rng, codec, area);
        return flipped.area;
      });
      if (flipped.strict) return { batch, expected: ErrorCode.CORRUPT_MESSAGE, detail: flipped.detail };
      return {
        batch,
        expected: ErrorCode.CORRUPT_MESSAGE,
        alsoAcceptable: [ErrorCode.INVALID_RECORD, ErrorCode.INVALID_TIMESTAMP],
        mayBeAccepted: true,
        detail: `${flipped.detail} (no checksum: refused, or accepted and read back byte for byte)`,
      };
    },
  },
];

// ---------------------------------------------------------------------------------------------
// Heavy cases: batches over max.message.bytes, and the bombs

/** Batches over max.message.bytes, one per codec: random (incompressible) values. */
function oversizedCase(rng: SeededRandom, codec: CaseCodec, nowMs: number, maxMessageBytes: number): InvalidBatchCase {
  const over = rng.pick([1, rng.int(2, 100), rng.int(101, 64 * 1024)]);
  let valueBytes = maxMessageBytes - RECORDS_OFFSET - 16 + over;
  for (let attempt = 0; attempt < 8; attempt++) {
    const record: GoodRecord = { key: text(rng, 8), value: rng.bytes(valueBytes), headers: [], timestamp: nowMs };
    const batch = finish(draftOf([record], codec), rng);
    if (batch.length > maxMessageBytes) {
      return {
        name: `batch over max.message.bytes [${codec}]: ${batch.length} bytes, limit ${maxMessageBytes}`,
        field: 'batch over max.message.bytes',
        codec,
        batch,
        expected: ErrorCode.MESSAGE_TOO_LARGE,
        heavy: true,
      };
    }
    valueBytes += maxMessageBytes - batch.length + over;
  }
  throw new Error(`generator bug: no ${codec} batch over ${maxMessageBytes} bytes`);
}

const bombCache = new Map<string, InvalidBatchCase[]>();

/** A one-record header (recordCount 1, lastOffsetDelta 0) around a compressed area. */
function bombBatch(codec: CaseCodec, area: Buffer, nowMs: number): Buffer {
  return writeBatch(
    { magic: 2, attributes: codecId(codec), lastOffsetDelta: 0, baseTimestamp: nowMs, maxTimestamp: nowMs, producerId: -1, producerEpoch: -1, baseSequence: -1, recordCount: 1 },
    area,
  );
}


/**
 * The bombs: areas that decode to more than `limitBytes` (MESSAGE_TOO_LARGE), each under
 * max.message.bytes compressed, and areas of exactly `limitBytes` zeros, which are not too large
 * but are no records either (INVALID_RECORD at record 0). Built once per limit and cached.
 */
export function bombCases(limitBytes: number, maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES): InvalidBatchCase[] {
  const key = `${limitBytes}/${maxMessageBytes}`;
  const cached = bombCache.get(key);
  if (cached !== undefined) return cached;
  // The records inside are zeros: their timestamps never come into it.
  const nowMs = Date.now();
  const MiB = 1024 * 1024;
  const GiB = 1024 * MiB;
  const bigZeros = Math.max(64 * MiB, 2 * limitBytes);
  const overLimit = limitBytes + MiB;
  const zeros = (size: number): Buffer => Buffer.alloc(size);
  const cases: Array<Omit<InvalidBatchCase, 'batch' | 'expected' | 'field'> & { area: () => Buffer; expected?: number; possibleRecordIndex?: number }> = [
    { name: `gzip of ${bigZeros} zero bytes`, codec: 'gzip', area: () => gzipSync(zeros(bigZeros), { level: 9 }) },
    { name: `gzip of limit + 1 (${limitBytes + 1}) zero bytes`, codec: 'gzip', area: () => gzipSync(zeros(limitBytes + 1), { level: 9 }) },
    {
      name: `gzip of exactly the limit (${limitBytes}) zero bytes: not too large, but no record`,
      codec: 'gzip',
      area: () => gzipSync(zeros(limitBytes), { level: 9 }),
      expected: ErrorCode.INVALID_RECORD,
      possibleRecordIndex: 0,
    },
    {
      name: 'raw snappy whose preamble declares 1 GiB (a short literal follows)',
      codec: 'snappy',
      area: () => Buffer.concat([Buffer.from(encodeUnsignedVarint(GiB)), Buffer.from([15 << 2]), Buffer.alloc(16, 0x61)]),
    },
    { name: `raw snappy of ${overLimit} zero bytes (real)`, codec: 'snappy', area: () => snappyRaw(zeros(overLimit)) },
    {
      name: `xerial snappy of ${overLimit} zero bytes in 1 MiB blocks (real)`,
      codec: 'snappy-xerial',
      area: () => {
        const block = snappyRaw(zeros(MiB));
        return xerialFrame(Array.from({ length: Math.ceil(overLimit / MiB) }, () => block));
      },
    },
    {
      name: 'xerial snappy whose block preamble declares 1 GiB',
      codec: 'snappy-xerial',
      area: () => xerialFrame([Buffer.concat([Buffer.from(encodeUnsignedVarint(GiB)), Buffer.from([15 << 2]), Buffer.alloc(16, 0x61)])]),
    },
    { name: `lz4 frame of ${bigZeros} zero bytes (lz4js)`, codec: 'lz4', area: () => Buffer.from(lz4.compress(zeros(bigZeros))) },
    { name: 'zstd RLE blocks of zeros declaring and holding 1 GiB', codec: 'zstd', area: () => zstdZeros(GiB) },
    { name: `zstd RLE blocks of limit + 1 (${limitBytes + 1}) zero bytes`, codec: 'zstd', area: () => zstdZeros(limitBytes + 1) },
    {
      name: `zstd RLE blocks of exactly the limit (${limitBytes}) zero bytes: not too large, but no record`,
      codec: 'zstd',
      area: () => zstdZeros(limitBytes),
      expected: ErrorCode.INVALID_RECORD,
      possibleRecordIndex: 0,
    },
  ];
  const built = cases.map(({ area, expected, possibleRecordIndex, name, codec }): InvalidBatchCase => {
    const batch = bombBatch(codec, area(), nowMs);
    if (batch.length > maxMessageBytes) throw new Error(`generator bug: bomb "${name}" is ${batch.length} bytes, over max.message.bytes ${maxMessageBytes}`);
    const tooLarge = expected === undefined;
    return {
      name: `${tooLarge ? 'decompresses past the limit' : 'decompresses to the limit'} [${codec}]: ${name}, ${batch.length} bytes sent`,
      field: tooLarge ? 'compressed area decompresses past the limit (bomb)' : 'compressed area decompresses to exactly the limit',
      codec,
      batch,
      expected: expected ?? ErrorCode.MESSAGE_TOO_LARGE,
      ...(possibleRecordIndex === undefined ? {} : { possibleRecordIndex }),
      heavy: true,
    };
  });
  bombCache.set(key, built);
  return built;
}

// ---------------------------------------------------------------------------------------------
// Lists and streams

/** The rules the generator breaks (for tests that check every one is covered). */
export const BROKEN_FIELDS: readonly string[] = BREAKERS.map((breaker) => breaker.field);

function makeCase(breaker: Breaker, codec: CaseCodec, variant: number, rng: SeededRandom, options: GeneratorOptions, label: string): InvalidBatchCase {
  const context: BreakContext = { rng, codec, nowMs: (options.nowMs ?? Date.now)() };
  const { detail, ...broken } = breaker.make(context);
  return { name: `${breaker.field} [${codec}] ${label}${variant}: ${detail}`, field: breaker.field, codec, ...broken };
}

function breakersFor(codec: CaseCodec): Breaker[] {
  return BREAKERS.filter((breaker) => (breaker.codecs ?? CASE_CODECS).includes(codec));
}

function heavyCases(rng: SeededRandom, options: GeneratorOptions): InvalidBatchCase[] {
  if (options.includeHeavy === false) return [];
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const codecs = options.codecs ?? CASE_CODECS;
  const oversized = codecs.map((codec) => oversizedCase(rng, codec, (options.nowMs ?? Date.now)(), maxMessageBytes));
  const bombs = options.decompressedLimitBytes === undefined ? [] : bombCases(options.decompressedLimitBytes, maxMessageBytes).filter((bomb) => codecs.includes(bomb.codec));
  return [...oversized, ...bombs];
}

/**
 * Every rule broken `variants` times for every codec (each variant its own random records), then
 * the oversized batches and the bombs. Deterministic for a seed (timestamps aside, which follow
 * options.nowMs).
 */
export function invalidBatchCases(seed: number, options: GeneratorOptions = {}): InvalidBatchCase[] {
  const rng = new SeededRandom(seed);
  const variants = options.variants ?? 3;
  const cases: InvalidBatchCase[] = [];
  for (const codec of options.codecs ?? CASE_CODECS) {
    for (const breaker of breakersFor(codec)) {
      for (let variant = 1; variant <= variants; variant++) cases.push(makeCase(breaker, codec, variant, new SeededRandom(rng.int(0, 0xffffffff)), options, '#'));
    }
  }
  return [...cases, ...heavyCases(rng, options)];
}

export interface StreamOptions extends GeneratorOptions {
  /** Share of the stream that is oversized batches and bombs (default 0.005). */
  heavyProbability?: number;
  /** Leave out cases that may be accepted (flipped bytes without a checksum). */
  refusedOnly?: boolean;
}

/**
 * An unbounded seeded stream of invalid batches: each draws a rule and a codec at random (each
 * case from its own sub-seed, named in the case, so one case can be replayed alone).
 */
export function* invalidBatchStream(seed: number, options: StreamOptions = {}): Generator<InvalidBatchCase, never, undefined> {
  const rng = new SeededRandom(seed);
  const codecs = options.codecs ?? CASE_CODECS;
  const pairs = codecs.flatMap((codec) => breakersFor(codec).map((breaker) => ({ breaker, codec })));
  const heavy = heavyCases(new SeededRandom(seed ^ 0x5bd1e995), options);
  for (let index = 0; ; index++) {
    if (heavy.length > 0 && rng.bool(options.heavyProbability ?? 0.005)) {
      yield rng.pick(heavy);
      continue;
    }
    const { breaker, codec } = rng.pick(pairs);
    const caseSeed = rng.int(0, 0xffffffff);
    const made = makeCase(breaker, codec, index, new SeededRandom(caseSeed), options, `(stream ${seed}, sub-seed ${caseSeed}) #`);
    if (options.refusedOnly === true && made.mayBeAccepted === true) continue;
    yield made;
  }
}
