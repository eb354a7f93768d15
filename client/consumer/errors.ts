// The errors only the consumer throws; the client's shared ones are in client/errors.ts.
import { KafkaClientError } from '../errors.js';
import { KafkaSerializationError } from '../serializers.js';

/**
 * A key or value its deserializer refused (a KafkaSerializationError naming where). The position
 * stays at this record: seek to offset + 1 to skip it.
 */
export class KafkaRecordDeserializationError extends KafkaSerializationError {
  override readonly name = 'KafkaRecordDeserializationError';
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
  readonly field: 'key' | 'value';

  constructor(topic: string, partition: number, offset: number, field: 'key' | 'value', format: string, cause: unknown) {
    const reason = cause instanceof KafkaSerializationError && cause.message.startsWith(`${cause.format}: `) ? cause.message.slice(cause.format.length + 2) : cause instanceof Error ? cause.message : String(cause);
    super(format, `cannot read the ${field} of ${topic}-${partition} at offset ${offset}: ${reason}`);
    this.topic = topic;
    this.partition = partition;
    this.offset = BigInt(offset);
    this.field = field;
    this.cause = cause;
  }
}

/** OFFSET_OUT_OF_RANGE with autoOffsetReset 'none' (or no position and 'none'). */
export class KafkaOffsetOutOfRangeError extends KafkaClientError {
  override readonly name = 'KafkaOffsetOutOfRangeError';

  constructor(readonly topic: string, readonly partition: number, readonly offset: number | null) {
    super(
      offset === null
        ? `${topic}-${partition} has no position and autoOffsetReset is 'none': seek first`
        : `offset ${offset} is out of range for ${topic}-${partition} and autoOffsetReset is 'none': seek to a valid offset`,
      false,
    );
  }
}
