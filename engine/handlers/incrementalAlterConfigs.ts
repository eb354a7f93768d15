// IncrementalAlterConfigs (44), v0-1 (v1 is flexible): SET (0), DELETE (1), APPEND (2) and
// SUBTRACT (3) on a TOPIC resource's overrides through TopicManager.alterConfigs, applied all or
// nothing per resource, validateOnly honoured. Errors map as in AlterConfigs: INVALID_CONFIG
// with the validator's message, BROKER resources and duplicates INVALID_REQUEST; an unknown
// operation or a SET/APPEND/SUBTRACT without a value is INVALID_REQUEST.
import { ErrorCode } from '../../protocol/errors.js';
import { decodeIncrementalAlterConfigsRequest, type IncrementalAlterConfigsRequest, type IncrementalAlterConfigsRequestAlterConfigsResource } from '../../protocol/generated/incrementalAlterConfigsRequest.js';
import { encodeIncrementalAlterConfigsResponse, type IncrementalAlterConfigsResponse } from '../../protocol/generated/incrementalAlterConfigsResponse.js';
import { TopicError, type IncrementalConfigOp } from '../topicManager.js';
import { alterResources, refuseDuplicateKeys } from './alterConfigs.js';
import { ApiKey } from '../../protocol/generated/apiSchemas.js';
import { defineHandler } from './handler.js';

/** Kafka's AlterConfigOp.OpType ids. */
const OPERATIONS = ['set', 'delete', 'append', 'subtract'] as const;

function operationsOf(resource: IncrementalAlterConfigsRequestAlterConfigsResource): IncrementalConfigOp[] {
  refuseDuplicateKeys(resource.configs.map((config) => config.name));
  return resource.configs.map((config): IncrementalConfigOp => {
    const op = OPERATIONS[config.configOperation];
    if (op === undefined) throw new TopicError(ErrorCode.INVALID_REQUEST, `config ${config.name}: unknown operation ${config.configOperation}; expected 0 (SET), 1 (DELETE), 2 (APPEND) or 3 (SUBTRACT)`);
    if (op === 'delete') return { name: config.name, op };
    if (config.value === null) throw new TopicError(ErrorCode.INVALID_REQUEST, `config ${config.name}: ${op.toUpperCase()} needs a value, got null`);
    return { name: config.name, op, value: config.value };
  });
}

export const incrementalAlterConfigsHandler = defineHandler<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>({
  apiKey: ApiKey.IncrementalAlterConfigs,
  decode: decodeIncrementalAlterConfigsRequest,
  encode: encodeIncrementalAlterConfigsResponse,
  async handle(request, _version, context) {
    const responses = await alterResources('IncrementalAlterConfigs', request.resources, context, (resource) =>
      context.services.topics.alterConfigs(resource.resourceName, operationsOf(resource), { validateOnly: request.validateOnly }),
    );
    return { throttleTimeMs: 0, responses };
  },
  errorResponse: (request, _version, errorCode) => ({
    throttleTimeMs: 0,
    responses: request.resources.map((resource) => ({ errorCode, errorMessage: null, resourceType: resource.resourceType, resourceName: resource.resourceName })),
  }),
});
