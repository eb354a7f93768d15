// InitProducerId (22), v0-1: a new producer id with epoch 0 for idempotent producers.
// Transactional ids need the transaction coordinator, which tidelog does not have yet: those
// requests are refused with INVALID_REQUEST and a log line, rather than a retriable error a
// client would loop on.
import { ErrorCode } from '../../protocol/errors.js';
import { decodeInitProducerIdRequest, type InitProducerIdRequest } from '../../protocol/generated/initProducerIdRequest.js';
import { encodeInitProducerIdResponse, type InitProducerIdResponse } from '../../protocol/generated/initProducerIdResponse.js';
import { ApiKey } from '../../protocol/generated/apiSchemas.js';
import { defineHandler } from './handler.js';

export const initProducerIdHandler = defineHandler<InitProducerIdRequest, InitProducerIdResponse>({
  apiKey: ApiKey.InitProducerId,
  decode: decodeInitProducerIdRequest,
  encode: encodeInitProducerIdResponse,
  async handle(request, _version, context) {
    if (request.transactionalId !== null) {
      context.services.logger.warn('transactional producer refused: transactions are not supported yet', { clientId: context.clientId, transactionalId: request.transactionalId });
      return { throttleTimeMs: 0, errorCode: ErrorCode.INVALID_REQUEST, producerId: -1n, producerEpoch: -1 };
    }
    const producerId = await context.services.producerIds.allocate();
    return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, producerId: BigInt(producerId), producerEpoch: 0 };
  },
  errorResponse: (_request, _version, errorCode) => ({ throttleTimeMs: 0, errorCode, producerId: -1n, producerEpoch: -1 }),
});
