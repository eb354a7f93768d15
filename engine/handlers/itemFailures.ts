// What admin handlers share: how one item of a request (a topic, a resource, a partition) is
// answered when the engine refuses it or something unexpected happens.
import { ErrorCode } from '../../protocol/errors.js';
import { kafkaErrorCodeOf } from '../kafkaErrors.js';
import type { HandlerContext } from './handler.js';

export interface Failure {
  errorCode: number;
  errorMessage: string;
}

/**
 * The error code and message one item of an admin request is answered with. Engine refusals
 * (TopicError, ConfigError, ...) carry their code and a message meant for the client; anything
 * else is a bug: logged with its stack, answered UNKNOWN_SERVER_ERROR without internals.
 */
export function failureOf(error: unknown, context: HandlerContext, fields: Record<string, unknown>): Failure {
  const errorCode = kafkaErrorCodeOf(error);
  if (errorCode === ErrorCode.UNKNOWN_SERVER_ERROR) {
    context.services.logger.error('admin request failed', { ...fields, clientId: context.clientId, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    return { errorCode, errorMessage: 'unexpected server error; see the broker log' };
  }
  return { errorCode, errorMessage: error instanceof Error ? error.message : String(error) };
}

/** The names that occur more than once in `names`. */
export function duplicatesOf(names: readonly string[]): Set<string> {
  const seen = new Set<string>();
  const duplicates = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) duplicates.add(name);
    seen.add(name);
  }
  return duplicates;
}

