// AlterConfigs (33), v0-1: a TOPIC resource's configs replace the topic's overrides
// (TopicManager.replaceConfigs: configs not named return to their defaults), validateOnly
// honoured. An invalid value is INVALID_CONFIG with the validator's message, which names the
// valid range. BROKER resources are INVALID_REQUEST: broker configs are static. Like Kafka:
// a null value, a key named twice, or a resource named twice is INVALID_REQUEST.
//
// Also the per-resource mapping IncrementalAlterConfigs shares (alterResource).
import { ErrorCode } from '../../protocol/errors.js';
import { decodeAlterConfigsRequest, type AlterConfigsRequest, type AlterConfigsRequestResource } from '../../protocol/generated/alterConfigsRequest.js';
import { encodeAlterConfigsResponse, type AlterConfigsResponse } from '../../protocol/generated/alterConfigsResponse.js';
import { invalidTopicName, TopicError } from '../topicManager.js';
import { duplicatesOf, failureOf } from './itemFailures.js';
import { ConfigResourceType } from './describeConfigs.js';
import { ApiKey } from '../../protocol/generated/apiSchemas.js';
import { defineHandler, type HandlerContext } from './handler.js';

export interface ResourceOutcome {
  errorCode: number;
  errorMessage: string | null;
  resourceType: number;
  resourceName: string;
}

function resourceKey(resource: { resourceType: number; resourceName: string }): string {
  return `${resource.resourceType}:${resource.resourceName}`;
}

/**
 * Answers each resource of an alter request: duplicates, broker and unknown resource types are
 * refused here; a topic resource runs `alterTopic` and reports what it threw.
 */
export async function alterResources<Resource extends { resourceType: number; resourceName: string }>(
  api: string,
  resources: readonly Resource[],
  context: HandlerContext,
  alterTopic: (resource: Resource) => Promise<unknown>,
): Promise<ResourceOutcome[]> {
  const duplicates = duplicatesOf(resources.map(resourceKey));
  const outcomes: ResourceOutcome[] = [];
  for (const resource of resources) {
    const { resourceType, resourceName } = resource;
    const answer = (errorCode: number, errorMessage: string | null): void => {
      outcomes.push({ errorCode, errorMessage, resourceType, resourceName });
    };
    const invalidName = resourceType === ConfigResourceType.TOPIC ? invalidTopicName(resourceName) : null;
    if (duplicates.has(resourceKey(resource))) {
      answer(ErrorCode.INVALID_REQUEST, `resource ${resourceName} (type ${resourceType}) is listed more than once in this request`);
    } else if (resourceType === ConfigResourceType.BROKER) {
      answer(ErrorCode.INVALID_REQUEST, 'broker configs are static; restart with --config');
    } else if (resourceType !== ConfigResourceType.TOPIC) {
      answer(ErrorCode.INVALID_REQUEST, `resource type ${resourceType} cannot be altered; only topics (2) have dynamic configs`);
    } else if (invalidName !== null) {
      answer(ErrorCode.INVALID_TOPIC_EXCEPTION, invalidName);
    } else {
      try {
        await alterTopic(resource);
        answer(ErrorCode.NONE, null);
      } catch (error) {
        const failure = failureOf(error, context, { api, topic: resourceName });
        answer(failure.errorCode, failure.errorMessage);
      }
    }
  }
  return outcomes;
}

/** Refuses a config key given twice for one resource (Kafka: INVALID_REQUEST). */
export function refuseDuplicateKeys(names: readonly string[]): void {
  const duplicates = duplicatesOf(names);
  if (duplicates.size > 0) throw new TopicError(ErrorCode.INVALID_REQUEST, `config ${[...duplicates].join(', ')} is given more than once`);
}

function requestedConfigs(resource: AlterConfigsRequestResource): Record<string, string> {
  refuseDuplicateKeys(resource.configs.map((config) => config.name));
  const configs: Record<string, string> = {};
  for (const config of resource.configs) {
    if (config.value === null) throw new TopicError(ErrorCode.INVALID_REQUEST, `null value for config ${config.name}; AlterConfigs replaces every override, so leave out a config to return it to its default`);
    configs[config.name] = config.value;
  }
  return configs;
}

export const alterConfigsHandler = defineHandler<AlterConfigsRequest, AlterConfigsResponse>({
  apiKey: ApiKey.AlterConfigs,
  decode: decodeAlterConfigsRequest,
  encode: encodeAlterConfigsResponse,
  async handle(request, _version, context) {
    const responses = await alterResources('AlterConfigs', request.resources, context, (resource) =>
      context.services.topics.replaceConfigs(resource.resourceName, requestedConfigs(resource), { validateOnly: request.validateOnly }),
    );
    return { throttleTimeMs: 0, responses };
  },
  errorResponse: (request, _version, errorCode) => ({
    throttleTimeMs: 0,
    responses: request.resources.map((resource) => ({ errorCode, errorMessage: null, resourceType: resource.resourceType, resourceName: resource.resourceName })),
  }),
});
