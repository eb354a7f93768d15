// Maps what the engine throws onto Kafka error codes, in one place, so every handler answers the
// same condition with the same code. Anything unexpected is UNKNOWN_SERVER_ERROR (and a bug).
import { ErrorCode } from '../protocol/errors.js';
import { CorruptBatchError } from '../segments/logSegment.js';
import { ConfigError, InvalidRecordsError, InvalidStoredBatchError, LogClosedError, OffsetOutOfRangeError, ReplicationTimeoutError, StorageError, ValidationBusyError } from './errors.js';
import { ProducerSequenceError } from './log/producerState.js';
import { TopicError } from './topicManager.js';

export function kafkaErrorCodeOf(error: unknown): number {
  if (error instanceof InvalidRecordsError || error instanceof OffsetOutOfRangeError || error instanceof StorageError || error instanceof LogClosedError || error instanceof ValidationBusyError || error instanceof InvalidStoredBatchError || error instanceof ReplicationTimeoutError) return error.kafkaErrorCode;
  if (error instanceof ConfigError || error instanceof TopicError || error instanceof ProducerSequenceError) return error.kafkaErrorCode;
  // A batch that rotted on disk: the data cannot be served, and the disk is what failed.
  if (error instanceof CorruptBatchError) return ErrorCode.KAFKA_STORAGE_ERROR;
  return ErrorCode.UNKNOWN_SERVER_ERROR;
}

/** Whether an error is an expected operating condition rather than a bug to log with its stack. */
export function isExpectedError(error: unknown): boolean {
  return kafkaErrorCodeOf(error) !== ErrorCode.UNKNOWN_SERVER_ERROR;
}
