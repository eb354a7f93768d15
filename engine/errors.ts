// Typed errors of the storage engine. An error here is an operating condition the caller turns
// into a Kafka error code (see kafkaErrorCode); a failed assertion is a bug and throws plain Error.

export type InvalidRecordsReason =
  | 'empty' // no batch at all
  | 'unsupported-magic' // magic 0 or 1 (legacy message sets)
  | 'corrupt' // wrong magic, lengths that disagree, failing CRC, malformed header
  | 'too-large' // a batch over max.message.bytes or over segment.bytes
  | 'offsets-out-of-order' // with kept offsets: a batch at or below the log end, or going backwards
  | 'invalid-record'; // a producer's batch whose record count is not lastOffsetDelta + 1

/** A produced record set was refused; nothing of it was written. */
export class InvalidRecordsError extends Error {
  override readonly name = 'InvalidRecordsError';
  constructor(
    readonly reason: InvalidRecordsReason,
    readonly detail: string,
    /** Index of the offending batch within the record set. */
    readonly batchIndex: number,
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

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly kafkaErrorCode = 40; // INVALID_CONFIG
}
