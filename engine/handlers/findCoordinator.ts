// FindCoordinator (10), v0-2: this broker coordinates every group (creating __consumer_offsets on
// first use, as Kafka does). Transaction coordinators (key type 1) are not available yet.
import { ErrorCode } from '../../protocol/errors.js';
import { decodeFindCoordinatorRequest, type FindCoordinatorRequest } from '../../protocol/generated/findCoordinatorRequest.js';
import { encodeFindCoordinatorResponse, type FindCoordinatorResponse } from '../../protocol/generated/findCoordinatorResponse.js';
import { kafkaErrorCodeOf } from '../kafkaErrors.js';
import { ApiKey } from '../../protocol/generated/apiSchemas.js';
import { defineHandler } from './handler.js';

const GROUP_KEY_TYPE = 0;

function refused(errorCode: number, errorMessage: string): FindCoordinatorResponse {
  return { throttleTimeMs: 0, errorCode, errorMessage, nodeId: -1, host: '', port: -1 };
}

export const findCoordinatorHandler = defineHandler<FindCoordinatorRequest, FindCoordinatorResponse>({
  apiKey: ApiKey.FindCoordinator,
  decode: decodeFindCoordinatorRequest,
  encode: encodeFindCoordinatorResponse,
  async handle(request, _version, context) {
    if ((request.keyType ?? GROUP_KEY_TYPE) !== GROUP_KEY_TYPE) return refused(ErrorCode.COORDINATOR_NOT_AVAILABLE, 'transactions are not supported yet');
    try {
      await context.services.groups.ensureReady();
    } catch (error) {
      context.services.logger.error('loading __consumer_offsets failed', { error: String(error) });
      return refused(kafkaErrorCodeOf(error) === ErrorCode.UNKNOWN_SERVER_ERROR ? ErrorCode.COORDINATOR_NOT_AVAILABLE : kafkaErrorCodeOf(error), 'the group coordinator is loading');
    }
    const { config } = context.services;
    return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, errorMessage: null, nodeId: config.nodeId, host: config.advertisedHost, port: config.advertisedPort };
  },
  errorResponse: (_request, _version, errorCode) => refused(errorCode, 'the group coordinator failed'),
});
