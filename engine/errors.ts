// Typed errors of the storage engine. An error here is an operating condition the caller turns
// into a Kafka error code (see kafkaErrorCode); a failed assertion is a bug and throws plain Error.

export type InvalidRecordsReason =
  | 'empty' // no batch at all
  | 'unsupported-magic' // magic 0 or 1 (legacy message sets)
  | 'corrupt' // wrong magic, lengths that disagree, failing CRC, malformed header
  | 'too-large' // a batch over max.message.bytes or over segment.bytes
  | 'offsets-out-of-order' // with kept offsets: a batch at or below the log end, or going backwards
  | 'invalid-record' // contents that contradict the header or the topic's rules (Kafka's InvalidRecordException)
  | 'invalid-timestamp'; // a record timestamp outside message.timestamp.before/after.max.ms

/** One refused record, as Produce v8+ reports it (KIP-467): its index within the batch and why. */
export interface RecordError {
  batchIndex: number;
  message: string;
}

/** A produced record set was refused; nothing of it was written. */
export class InvalidRecordsError extends Error {
  override readonly name = 'InvalidRecordsError';
  constructor(
    readonly reason: InvalidRecordsReason,
    readonly detail: string,
    /** Index of the offending batch within the record set. */
    readonly batchIndex: number,
    /** The records that caused the refusal, when a record (not the batch) is at fault. */
    readonly recordErrors: readonly RecordError[] = [],
  ) {
    super(`records refused (${reason}) at batch ${batchIndex}: ${detail}`);
  }

  get kafkaErrorCode(): number {
    switch (this.reason) {
      case 'unsupported-magic':
        return 43; // UNSUPPORTED_FOR_MESSAGE_FORMAT
      case 'too-large':
        return 10; // MESSAGE_TOO_LARGE
      case 'offsets-out-of-order':
        return 2; // CORRUPT_MESSAGE, as Kafka answers an invalid offset sequence
      case 'invalid-record':
        return 87; // INVALID_RECORD
      case 'invalid-timestamp':
        return 32; // INVALID_TIMESTAMP
      case 'empty':
      case 'corrupt':
        return 2; // CORRUPT_MESSAGE
    }
  }
}

export class OffsetOutOfRangeError extends Error {
  override readonly name = 'OffsetOutOfRangeError';
  readonly kafkaErrorCode = 1;
  constructor(
    readonly offset: number,
    readonly logStartOffset: number,
    readonly logEndOffset: number,
  ) {
    super(`offset ${offset} is outside the log [${logStartOffset}, ${logEndOffset}]`);
  }
}

/** The disk failed us (full, I/O error, fsync failure). Retriable from the client's view. */
export class StorageError extends Error {
  override readonly name = 'StorageError';
  readonly kafkaErrorCode = 56; // KAFKA_STORAGE_ERROR
  constructor(message: string, options?: { cause: unknown }) {
    super(message, options);
  }
}

export class LogClosedError extends Error {
  override readonly name = 'LogClosedError';
  readonly kafkaErrorCode = 6; // NOT_LEADER_OR_FOLLOWER: the client refreshes metadata and retries
}

/**
 * A batch on disk passed its CRC but not the record checks (written by a version that did not
 * validate appends): it is never served. CORRUPT_MESSAGE tells the client the data at this offset
 * is bad; a Java consumer then reports it and lets the application seek past it.
 */
export class InvalidStoredBatchError extends Error {
  override readonly name = 'InvalidStoredBatchError';
  readonly kafkaErrorCode = 2; // CORRUPT_MESSAGE
  constructor(
    readonly file: string,
    readonly baseOffset: number,
    readonly lastOffset: number,
    readonly detail: string,
  ) {
    super(`the batch at offsets ${baseOffset}-${lastOffset} in ${file} does not decode (${detail}); it is not served`);
  }
}

/**
 * Too many produced batches wait to be decompressed for validation at once; the client retries
 * (REQUEST_TIMED_OUT is retriable for every Kafka client).
 */
export class ValidationBusyError extends Error {
  override readonly name = 'ValidationBusyError';
  readonly kafkaErrorCode = 7; // REQUEST_TIMED_OUT
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly kafkaErrorCode = 40; // INVALID_CONFIG
}

/** acks=-1: the high watermark did not cover the append in time (the records stay in the log). */
export class ReplicationTimeoutError extends Error {
  override readonly name = 'ReplicationTimeoutError';
  readonly kafkaErrorCode = 7; // REQUEST_TIMED_OUT
}
