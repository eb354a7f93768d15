// Typed errors of the bundled client. `retriable` tells the producer and cluster whether to retry
// (after a metadata refresh); a Kafka error code keeps its number and name.
import { errorCodeName, isRetriableErrorCode } from '../protocol/errors.js';

export class KafkaClientError extends Error {
  override readonly name: string = 'KafkaClientError';
  readonly retriable: boolean;

  constructor(message: string, retriable: boolean, options?: { cause?: unknown }) {
    super(message, options);
    this.retriable = retriable;
  }
}

/** A Kafka error code in a response. */
export class KafkaProtocolError extends KafkaClientError {
  override readonly name = 'KafkaProtocolError';
  readonly code: number;
  readonly codeName: string;

  constructor(code: number, context: string, brokerMessage?: string | null) {
    const codeName = errorCodeName(code);
    super(`${context}: ${codeName} (Kafka error ${code})${brokerMessage ? `: ${brokerMessage}` : ''}`, isRetriableErrorCode(code));
    this.code = code;
    this.codeName = codeName;
  }
}

/** The TCP connection failed, closed, or sent bytes we cannot read. Retriable on a new connection. */
export class KafkaConnectionError extends KafkaClientError {
  override readonly name = 'KafkaConnectionError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, true, options);
  }
}

/** A request had no answer within its timeout. Retriable. */
export class KafkaRequestTimeoutError extends KafkaClientError {
  override readonly name = 'KafkaRequestTimeoutError';

  constructor(message: string) {
    super(message, true);
  }
}

/** The broker lacks an API (or every version of it) the client needs. Not retriable. */
export class KafkaUnsupportedApiError extends KafkaClientError {
  override readonly name = 'KafkaUnsupportedApiError';

  constructor(message: string) {
    super(message, false);
  }
}

/** A bad option or argument (named precisely). Not retriable. */
export class KafkaConfigError extends KafkaClientError {
  override readonly name = 'KafkaConfigError';

  constructor(message: string) {
    super(message, false);
  }
}

/** Work given up because the client was closed. */
export class KafkaClosedError extends KafkaClientError {
  override readonly name = 'KafkaClosedError';

  constructor(message: string) {
    super(message, false);
  }
}

/** A record could not be delivered within deliveryTimeoutMs or after its retries. */
export class KafkaDeliveryError extends KafkaClientError {
  override readonly name = 'KafkaDeliveryError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, false, options);
  }
}

export function isRetriable(error: unknown): boolean {
  return error instanceof KafkaClientError && error.retriable;
}
