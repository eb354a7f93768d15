// DeleteTopics (20), v0-1: TopicManager.delete per name (the partition directories go with it).
// A name that is not a legal topic name is INVALID_TOPIC_EXCEPTION; an unknown one
// UNKNOWN_TOPIC_OR_PARTITION. A name listed twice is deleted once and answered once, as Kafka's
// response holds one result per name.
import { ErrorCode } from '../../protocol/errors.js';
import { decodeDeleteTopicsRequest, type DeleteTopicsRequest } from '../../protocol/generated/deleteTopicsRequest.js';
import { encodeDeleteTopicsResponse, type DeleteTopicsResponse, type DeleteTopicsResponseDeletableTopicResult } from '../../protocol/generated/deleteTopicsResponse.js';
import { invalidTopicName } from '../topicManager.js';
import { failureOf } from './itemFailures.js';
import { ApiKey } from '../../protocol/generated/apiSchemas.js';
import { defineHandler } from './handler.js';

function namesOf(request: DeleteTopicsRequest): string[] {
  return [...new Set(request.topicNames ?? [])];
}

export const deleteTopicsHandler = defineHandler<DeleteTopicsRequest, DeleteTopicsResponse>({
  apiKey: ApiKey.DeleteTopics,
  decode: decodeDeleteTopicsRequest,
  encode: encodeDeleteTopicsResponse,
  async handle(request, _version, context) {
    const responses: DeleteTopicsResponseDeletableTopicResult[] = [];
    for (const name of namesOf(request)) {
      if (invalidTopicName(name) !== null) {
        responses.push({ name, errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION });
        continue;
      }
      try {
        await context.services.topics.delete(name);
        responses.push({ name, errorCode: ErrorCode.NONE });
      } catch (error) {
        responses.push({ name, errorCode: failureOf(error, context, { api: 'DeleteTopics', topic: name }).errorCode });
      }
    }
    return { throttleTimeMs: 0, responses };
  },
  errorResponse: (request, _version, errorCode) => ({
    throttleTimeMs: 0,
    responses: namesOf(request).map((name) => ({ name, errorCode })),
  }),
});
