// Validation of a produced record set before the log gives it offsets or decides to roll: what
// Kafka's LogValidator checks, so a batch that a Kafka client could not decode never reaches a
// segment. One record set is refused whole (InvalidRecordsError) or accepted whole.
//
// Per batch:
//   header      magic, lengths, attributes (codec id known; no control or delete-horizon bit from
//               a client; transactional only with a producer id), producer fields consistent,
//               recordCount > 0 and equal to lastOffsetDelta + 1, size <= max.message.bytes
//   records     every record's length, varints, key, value and headers inside the record, offset
//               deltas 0, 1, 2, ..., exactly recordCount records filling the area; keys on
//               compacted topics; timestamps within message.timestamp.before/after.max.ms
//   compressed  decompressed for that walk with a hard output limit derived from
//               max.message.bytes: first in-line with a small output cap (the strict decoders
//               stop there, so it costs well under a millisecond), and when that is not enough
//               off the event loop: gzip through zlib's asynchronous API, the other codecs on a
//               worker thread, each first reserving its limit from the broker's DecompressionBudget
//
// Error codes, as Kafka answers: framing, CRC and undecodable payloads CORRUPT_MESSAGE; contents
// that contradict the header or the topic INVALID_RECORD (with the record's index for Produce
// v8+); timestamps INVALID_TIMESTAMP; too large, or decompressing past the limit, MESSAGE_TOO_LARGE
// (a Java producer then splits the batch).
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import {
  ATTRIBUTE_CONTROL,
  ATTRIBUTE_DELETE_HORIZON,
  ATTRIBUTE_LOG_APPEND_TIME,
  ATTRIBUTE_TRANSACTIONAL,
  ATTRIBUTES_OFFSET,
  CRC_OFFSET,
  MAGIC_OFFSET,
  MAX_TIMESTAMP_OFFSET,
  NO_PRODUCER_ID,
  RECORDS_OFFSET,
  checkBatch,
  compressionOf,
  computeBatchCrc,
  hex32,
  writeInt64FromNumber,
  type BatchHeader,
} from '../../segments/recordBatch.js';
import {
  CompressionCodec,
  CorruptCompressionError,
  DECOMPRESSION_LIMIT_CEILING_BYTES,
  DecompressionLimitError,
  UnsupportedCompressionError,
  checkSingleGzipMember,
  compressionName,
  decompress,
  gzipErrorToCompressionError,
} from '../../segments/compression.js';
import { RecordsWalk, checkRecordsArea, type AreaVerdict, type RecordsRules, type RecordsVerdict } from '../../segments/recordsCheck.js';
import type { DecompressionBudget } from './decompressionBudget.js';
import { InvalidRecordsError, ValidationBusyError } from '../errors.js';
import type { LogConfig } from './logConfig.js';
import { WorkerPoolError, type WorkerPool } from '../workers/workerPool.js';
import { INT32_MAX } from '../../common/limits.js';

const MIB = 1024 * 1024;

/**
 * A produced batch may decompress to at most this many times its topic's max.message.bytes:
 * room for text compressed 10:1 and more, far below what a bomb expands to.
 */
export const DECOMPRESSED_BYTES_PER_MESSAGE_BYTE = 16;
/** ...and never less than this, so a topic with a small max.message.bytes still takes well-compressed batches. */
export const MIN_DECOMPRESSED_BATCH_LIMIT = 8 * MIB;

/** The largest decompressed records area accepted in one batch of a topic. */
export function decompressedBatchLimit(maxMessageBytes: number): number {
  return Math.max(MIN_DECOMPRESSED_BATCH_LIMIT, Math.min(maxMessageBytes * DECOMPRESSED_BYTES_PER_MESSAGE_BYTE, DECOMPRESSION_LIMIT_CEILING_BYTES));
}

/**
 * In-line work of one turn of the event loop, across appends, estimated from what it measures on
 * this kind of machine (a record walked ~25 ns, a byte decompressed ~3 ns); what does not fit
 * waits for a later turn.
 */
const INLINE_WORK_NS_PER_TURN = 5_000_000;
const NS_PER_RECORD_WALKED = 25;
const NS_PER_BYTE_DECOMPRESSED = 3;
/** A walk that does not fit is done this many records per turn (under half a millisecond). */
const RECORDS_PER_TURN = 16_384;
/** Compressed areas are first decoded in-line up to this output; larger ones go off the event loop. */
const INLINE_DECOMPRESS_BYTES = 128 * 1024;

const gunzipAsync = promisify(gunzip);

/** What a log requires of the batches appended to it, from its topic's configs. */
export interface AppendPolicy {
  maxMessageBytes: number;
  segmentBytes: number;
  timestampType: 'CreateTime' | 'LogAppendTime';
  /** message.timestamp.before.max.ms (Number.MAX_SAFE_INTEGER: unbounded) */
  timestampBeforeMaxMs: number;
  /** message.timestamp.after.max.ms (Number.MAX_SAFE_INTEGER: unbounded) */
  timestampAfterMaxMs: number;
  /** Compacted topics refuse records without a key. */
  requireKeys: boolean;
}

export function appendPolicyOf(config: LogConfig): AppendPolicy {
  return {
    maxMessageBytes: config.maxMessageBytes,
    segmentBytes: config.segmentBytes,
    timestampType: config.messageTimestampType,
    timestampBeforeMaxMs: config.messageTimestampBeforeMaxMs,
    timestampAfterMaxMs: config.messageTimestampAfterMaxMs,
    requireKeys: config.cleanupPolicy.includes('compact'),
  };
}

/** A batch that passed every check: a view into the caller's buffer, offsets still as sent. */
export interface ValidatedBatch {
  buffer: Buffer;
  lastOffsetDelta: number;
  /** The largest record timestamp (the header's maxTimestamp has been set to it). */
  maxTimestamp: number;
  producerId: number;
  /** Its CRC was checked here (compressed batches, before decompressing): the log need not check it again. */
  crcVerified: boolean;
}

export interface AppendValidatorOptions {
  /** Decompresses large snappy, lz4 and zstd areas off the event loop; without it, in this thread. */
  workers?: WorkerPool | null;
  /** Bounds the bytes decompressed at once across the broker; without it, unbounded (tests). */
  budget?: DecompressionBudget | null;
  /**
   * false: header checks only, as before record validation existed. For the benchmark's
   * baseline alone; a broker always checks records.
   */
  checkRecords?: boolean;
}

export class AppendValidator {
  private readonly workers: WorkerPool | null;
  private readonly budget: DecompressionBudget | null;
  private readonly recordChecks: boolean;

  constructor(options: AppendValidatorOptions = {}) {
    this.workers = options.workers ?? null;
    this.budget = options.budget ?? null;
    this.recordChecks = options.checkRecords ?? true;
  }

  /**
   * Checks a produced record set (one or more v2 batches). Returns the batches at once when no
   * batch needs decompressing or a long walk, else a promise; throws (or rejects with)
   * InvalidRecordsError naming the first bad batch. CRCs of accepted uncompressed batches are left
   * to the caller (the log checks every batch before it gets offsets); compressed ones are checked
   * here, before any decompression, and any batch whose contents are refused has its CRC checked
   * first.
   */
  validate(records: Buffer, policy: AppendPolicy, nowMs: number): ValidatedBatch[] | Promise<ValidatedBatch[]> {
    if (records.length === 0) throw new InvalidRecordsError('empty', 'the record set holds no batch', 0);
    const pending: Array<Promise<ValidatedBatch>> = [];
    const batches: ValidatedBatch[] = [];
    let position = 0;
    for (let index = 0; position < records.length; index++) {
      const start = position;
      const { header, size } = crcFirst(records, start, index, () => checkProducedHeader(records, start, policy, index));
      const buffer = records.subarray(position, position + size);
      if (!this.recordChecks) {
        batches.push({ buffer: records.subarray(position, position + size), lastOffsetDelta: header.lastOffsetDelta, maxTimestamp: header.maxTimestamp, producerId: header.producerId, crcVerified: false });
        position += size;
        continue;
      }
      const rules = recordsRules(header, policy, nowMs);
      const outcome = crcFirst(records, start, index, () => this.checkRecords(buffer, header, rules, policy, index));
      if (outcome instanceof Promise) {
        const slot = batches.length;
        batches.push(undefined as unknown as ValidatedBatch);
        pending.push(
          outcome.then(
            (batch) => (batches[slot] = batch),
            (error: unknown) => {
              throw crcRefusalOr(records, start, index, error);
            },
          ),
        );
      } else {
        batches.push(outcome);
      }
      position += size;
    }
    if (pending.length === 0) return batches;
    return Promise.all(pending).then(() => batches);
  }

  private checkRecords(buffer: Buffer, header: BatchHeader, rules: RecordsRules, policy: AppendPolicy, index: number): ValidatedBatch | Promise<ValidatedBatch> {
    const compressed = compressionOf(header.attributes) !== CompressionCodec.none;
    if (compressed) {
      // Decompressing bytes that failed their CRC would only waste the work and blur the error.
      const crc = computeBatchCrc(buffer);
      if (crc !== header.crc) throw new InvalidRecordsError('corrupt', `crc-mismatch: stored CRC ${hex32(header.crc)}, computed ${hex32(crc)}`, index);
    }
    const verdict = this.areaVerdict(buffer, header, rules, decompressedBatchLimit(policy.maxMessageBytes));
    if (verdict instanceof Promise) return verdict.then((settled) => accepted(buffer, header, settled, policy, index, compressed));
    return accepted(buffer, header, verdict, policy, index, compressed);
  }

  /**
   * The record checks of a batch already in the log (written by a version that did not validate
   * appends): structure only, no topic rules. The caller has checked its framing and CRC.
   */
  checkStoredBatch(buffer: Buffer, header: BatchHeader, options: { limitBytes: number; denseOffsetDeltas: boolean }): AreaVerdict | Promise<AreaVerdict> {
    // Compaction may leave a batch without records (Kafka keeps them for producer state).
    if (header.recordCount === 0) return { ok: true, maxTimestamp: header.maxTimestamp };
    const rules: RecordsRules = {
      recordCount: header.recordCount,
      lastOffsetDelta: header.lastOffsetDelta,
      denseOffsetDeltas: options.denseOffsetDeltas,
      baseTimestamp: header.baseTimestamp,
      requireKeys: false,
      timestampRange: null,
    };
    return this.areaVerdict(buffer, header, rules, options.limitBytes);
  }

  /**
   * Decompresses (bounded, off the event loop when large) and walks a batch's records area.
   * Compressed areas are first tried here with an output cap of INLINE_DECOMPRESS_BYTES: the
   * decoders stop at the cap, so the attempt costs at most that much output (a fraction of a
   * millisecond) and most producers' batches never leave the event loop; an area that needs
   * more goes to zlib's thread pool (gzip) or a worker thread, under the broker's budget.
   */
  private areaVerdict(buffer: Buffer, header: BatchHeader, rules: RecordsRules, limit: number): AreaVerdict | Promise<AreaVerdict> {
    const codec = compressionOf(header.attributes);
    const area = buffer.subarray(RECORDS_OFFSET);
    if (codec === CompressionCodec.none) return walk(area, rules);
    if (takeInlineWork(INLINE_DECOMPRESS_BYTES * NS_PER_BYTE_DECOMPRESSED)) {
      const inline = inlineDecompress(codec, area);
      if (Buffer.isBuffer(inline)) return walk(inline, rules);
      if (inline !== null) return inline;
    }
    if (codec === CompressionCodec.gzip) return this.gzipVerdict(area, limit, rules);
    const workers = this.workers;
    if (workers === null) return this.budget === null ? checkRecordsArea(codec, area, limit, rules) : this.withBudget(limit, async () => checkRecordsArea(codec, area, limit, rules));
    return this.withBudget(limit, async () => {
      try {
        // A copy of just the area: a view would clone its whole underlying request buffer.
        return await workers.run('validateRecords', { codec, data: new Uint8Array(area), limitBytes: limit, rules }, { label: `validate a ${compressionName(codec) ?? codec} batch of ${buffer.length} bytes` });
      } catch (error) {
        // A full queue, a stopped pool or a lost thread says nothing about the batch: retriable.
        if (error instanceof WorkerPoolError) throw new ValidationBusyError(`the batch could not be validated now (${error.message}); retry`);
        throw error;
      }
    });
  }

  private gzipVerdict(area: Buffer, limit: number, rules: RecordsRules): Promise<AreaVerdict> {
    return this.withBudget(limit, async (): Promise<AreaVerdict> => {
      let inflated: Buffer;
      try {
        inflated = await gunzipAsync(area, { maxOutputLength: limit });
        checkSingleGzipMember(area, inflated.length);
      } catch (caught) {
        const error = caught instanceof CorruptCompressionError ? caught : gzipErrorToCompressionError(caught, limit);
        if (error instanceof DecompressionLimitError) return { ok: false, problem: 'decompressed-too-large', recordIndex: -1, detail: `the gzip records area decompresses to more than ${limit} bytes` };
        if (error instanceof CorruptCompressionError) return { ok: false, problem: 'corrupt-compression', recordIndex: -1, detail: error.message };
        throw error;
      }
      return walk(inflated, rules);
    });
  }

  private async withBudget<T>(bytes: number, work: () => Promise<T>): Promise<T> {
    if (this.budget === null) return work();
    const release = await this.budget.reserve(bytes);
    try {
      return await work();
    } finally {
      release();
    }
  }
}

/**
 * Runs a check; when it refuses the batch at `position` for its contents, a CRC mismatch is the
 * truer answer (the bytes were damaged on the way), as Kafka checks the CRC first. The CRC is
 * computed here only on that rare path: the log checks accepted batches' own.
 */
function crcFirst<T>(records: Buffer, position: number, index: number, check: () => T): T {
  try {
    return check();
  } catch (error) {
    throw crcRefusalOr(records, position, index, error);
  }
}

function crcRefusalOr(records: Buffer, position: number, index: number, error: unknown): unknown {
  if (!(error instanceof InvalidRecordsError) || error.reason === 'corrupt' || error.reason === 'empty' || error.reason === 'unsupported-magic') return error;
  if (records.length - position < RECORDS_OFFSET) return error;
  const size = records.readInt32BE(position + 8) + 12;
  if (size < RECORDS_OFFSET || position + size > records.length) return error;
  const stored = records.readUInt32BE(position + CRC_OFFSET);
  const actual = computeBatchCrc(records, position, size);
  return stored === actual ? error : new InvalidRecordsError('corrupt', `crc-mismatch: stored CRC ${hex32(stored)}, computed ${hex32(actual)}`, index);
}

/**
 * Work done in-line in the current turn of the event loop, across every append, in estimated
 * nanoseconds: one request may carry a hundred partitions of 1 MiB each, which must not add up to
 * one long stall.
 */
let inlineWorkThisTurn = 0;
let inlineWorkResetScheduled = false;

/** Whether `ns` more of in-line work fit this turn (and counts them if so). */
function takeInlineWork(ns: number): boolean {
  if (inlineWorkThisTurn > 0 && inlineWorkThisTurn + ns > INLINE_WORK_NS_PER_TURN) return false;
  inlineWorkThisTurn += ns;
  if (!inlineWorkResetScheduled) {
    inlineWorkResetScheduled = true;
    setImmediate(() => {
      inlineWorkThisTurn = 0;
      inlineWorkResetScheduled = false;
    });
  }
  return true;
}

/** Walks a records area now when this turn has room for it, else over later turns. */
function walk(area: Uint8Array, rules: RecordsRules): RecordsVerdict | Promise<RecordsVerdict> {
  return rules.recordCount <= RECORDS_PER_TURN && takeInlineWork(rules.recordCount * NS_PER_RECORD_WALKED) ? RecordsWalk.check(area, rules) : walkInTurns(area, rules);
}

/**
 * Decodes a compressed area here, up to INLINE_DECOMPRESS_BYTES of output: the output, or the
 * refusal when the area does not decode; null when it needs more room than that.
 */
function inlineDecompress(codec: number, area: Buffer): Buffer | AreaVerdict | null {
  try {
    return decompress(codec, area, INLINE_DECOMPRESS_BYTES);
  } catch (error) {
    if (error instanceof DecompressionLimitError) return null;
    if (error instanceof UnsupportedCompressionError) return { ok: false, problem: 'unsupported-codec', recordIndex: -1, detail: `compression codec id ${codec} does not exist` };
    if (error instanceof CorruptCompressionError) return { ok: false, problem: 'corrupt-compression', recordIndex: -1, detail: error.message };
    throw error;
  }
}

/** Walks an area a slice of records per turn of the event loop, starting on a later turn. */
async function walkInTurns(area: Uint8Array, rules: RecordsRules): Promise<RecordsVerdict> {
  const walk = new RecordsWalk(area, rules);
  for (;;) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    const verdict = walk.step(RECORDS_PER_TURN);
    if (verdict !== null) return verdict;
  }
}

/**
 * The header checks, in the order Kafka makes them; returns the header and the batch size or
 * throws InvalidRecordsError. The CRC is not computed here.
 */
export function checkProducedHeader(records: Buffer, position: number, policy: AppendPolicy, index: number): { header: BatchHeader; size: number } {
  if (records.length - position > MAGIC_OFFSET) {
    const magic = records.readInt8(position + MAGIC_OFFSET);
    if (magic === 0 || magic === 1) throw new InvalidRecordsError('unsupported-magic', `magic ${magic} (legacy message set); only record batch v2 is stored`, index);
  }
  const check = checkBatch(records, position, records.length, { maxBatchBytes: INT32_MAX, verifyCrc: false });
  if (!check.ok) {
    const contents = check.problem === 'bad-offsets' || check.problem === 'bad-record-count';
    throw new InvalidRecordsError(contents ? 'invalid-record' : 'corrupt', `${check.problem}: ${check.detail}`, index);
  }
  const { header, size } = check;
  if (size > policy.maxMessageBytes) throw new InvalidRecordsError('too-large', `batch of ${size} bytes exceeds max.message.bytes ${policy.maxMessageBytes}`, index);
  if (size > policy.segmentBytes) throw new InvalidRecordsError('too-large', `batch of ${size} bytes exceeds segment.bytes ${policy.segmentBytes}`, index);
  const codec = compressionOf(header.attributes);
  if (compressionName(codec) === null) throw new InvalidRecordsError('corrupt', `compression codec id ${codec} does not exist`, index);
  if ((header.attributes & ATTRIBUTE_CONTROL) !== 0) throw new InvalidRecordsError('invalid-record', 'clients may not write control batches', index);
  if ((header.attributes & ATTRIBUTE_DELETE_HORIZON) !== 0) throw new InvalidRecordsError('invalid-record', 'the delete-horizon flag is set only by the log cleaner', index);
  if (header.producerId < NO_PRODUCER_ID) throw new InvalidRecordsError('invalid-record', `producer id ${header.producerId} is negative`, index);
  if ((header.attributes & ATTRIBUTE_TRANSACTIONAL) !== 0 && header.producerId === NO_PRODUCER_ID) throw new InvalidRecordsError('invalid-record', 'a transactional batch needs a producer id', index);
  if (header.producerId !== NO_PRODUCER_ID && (header.baseSequence < 0 || header.producerEpoch < 0)) {
    throw new InvalidRecordsError('invalid-record', `producer ${header.producerId} sent sequence ${header.baseSequence} and epoch ${header.producerEpoch}; both must be >= 0`, index);
  }
  if (header.recordCount <= 0) throw new InvalidRecordsError('invalid-record', `recordCount ${header.recordCount}: a produced batch holds at least one record`, index);
  // A producer's batch holds one record per offset (only compaction leaves fewer records).
  if (header.recordCount !== header.lastOffsetDelta + 1) {
    throw new InvalidRecordsError('invalid-record', `batch holds ${header.recordCount} records but its lastOffsetDelta is ${header.lastOffsetDelta}`, index);
  }
  return { header, size };
}

function recordsRules(header: BatchHeader, policy: AppendPolicy, nowMs: number): RecordsRules {
  const checkTimestamps = policy.timestampType === 'CreateTime' && (policy.timestampBeforeMaxMs < Number.MAX_SAFE_INTEGER || policy.timestampAfterMaxMs < Number.MAX_SAFE_INTEGER);
  return {
    recordCount: header.recordCount,
    lastOffsetDelta: header.lastOffsetDelta,
    denseOffsetDeltas: true,
    baseTimestamp: header.baseTimestamp,
    requireKeys: policy.requireKeys,
    timestampRange: checkTimestamps
      ? {
          min: policy.timestampBeforeMaxMs >= Number.MAX_SAFE_INTEGER ? Number.MIN_SAFE_INTEGER : nowMs - policy.timestampBeforeMaxMs,
          max: policy.timestampAfterMaxMs >= Number.MAX_SAFE_INTEGER ? Number.MAX_SAFE_INTEGER : nowMs + policy.timestampAfterMaxMs,
        }
      : null,
  };
}

/** Turns a records verdict into the validated batch, or the refusal Kafka would answer. */
function accepted(buffer: Buffer, header: BatchHeader, verdict: AreaVerdict, policy: AppendPolicy, index: number, crcVerified: boolean): ValidatedBatch {
  if (!verdict.ok) throw refusalOf(verdict, policy, index);
  // A rewritten header got its CRC after the old one was checked: verified either way.
  const rewritten = policy.timestampType === 'CreateTime' && normalizeCreateTime(buffer, header, verdict.maxTimestamp, index);
  return { buffer, lastOffsetDelta: header.lastOffsetDelta, maxTimestamp: verdict.maxTimestamp, producerId: header.producerId, crcVerified: crcVerified || rewritten };
}

function refusalOf(verdict: Exclude<AreaVerdict, { ok: true }>, policy: AppendPolicy, index: number): InvalidRecordsError {
  switch (verdict.problem) {
    case 'corrupt-compression':
    case 'unsupported-codec':
      return new InvalidRecordsError('corrupt', verdict.detail, index);
    case 'decompressed-too-large':
      return new InvalidRecordsError('too-large', `${verdict.detail} (${DECOMPRESSED_BYTES_PER_MESSAGE_BYTE} x max.message.bytes ${policy.maxMessageBytes}, at least ${MIN_DECOMPRESSED_BATCH_LIMIT})`, index);
    case 'keyless': {
      const message = `a compacted topic refuses records without a key: ${verdict.detail}`;
      return new InvalidRecordsError('invalid-record', message, index, [{ batchIndex: verdict.recordIndex, message }]);
    }
    case 'timestamp': {
      const message = `${verdict.detail} (message.timestamp.before.max.ms ${policy.timestampBeforeMaxMs}, message.timestamp.after.max.ms ${policy.timestampAfterMaxMs})`;
      return new InvalidRecordsError('invalid-timestamp', message, index, [{ batchIndex: verdict.recordIndex, message }]);
    }
    case 'malformed':
      // A record at fault is named (Produce v8 recordErrors); a count that disagrees with the area is the batch's.
      return new InvalidRecordsError('invalid-record', verdict.detail, index, verdict.recordIndex < 0 ? [] : [{ batchIndex: verdict.recordIndex, message: verdict.detail }]);
  }
}

/**
 * CreateTime batches keep the producer's timestamps, but the header must say so and carry their
 * true maximum (the time index is built from it), as Kafka rewrites it. Rare: real clients send
 * both right, so the CRC is recomputed only then, after checking the one the client sent.
 * Returns whether it rewrote the header.
 */
function normalizeCreateTime(buffer: Buffer, header: BatchHeader, maxTimestamp: number, index: number): boolean {
  const logAppendTimeFlag = (header.attributes & ATTRIBUTE_LOG_APPEND_TIME) !== 0;
  if (!logAppendTimeFlag && header.maxTimestamp === maxTimestamp) return false;
  const crc = computeBatchCrc(buffer);
  if (crc !== header.crc) throw new InvalidRecordsError('corrupt', `crc-mismatch: stored CRC ${hex32(header.crc)}, computed ${hex32(crc)}`, index);
  if (logAppendTimeFlag) buffer.writeInt16BE(header.attributes & ~ATTRIBUTE_LOG_APPEND_TIME, ATTRIBUTES_OFFSET);
  writeInt64FromNumber(buffer, MAX_TIMESTAMP_OFFSET, maxTimestamp);
  buffer.writeUInt32BE(computeBatchCrc(buffer), CRC_OFFSET);
  return true;
}
