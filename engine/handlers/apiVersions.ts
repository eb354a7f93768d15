// ApiVersions (18), v0-3: the APIs and version ranges we advertise. v3 is flexible but its
// response keeps header v0 (the dispatcher picks headers). An unsupported ApiVersions version is
// answered by the dispatcher with error 35 in the v0 layout.
import { ADVERTISED_APIS } from '../../protocol/apis.js';
import { ErrorCode } from '../../protocol/errors.js';
import { decodeApiVersionsRequest, type ApiVersionsRequest } from '../../protocol/generated/apiVersionsRequest.js';
import { encodeApiVersionsResponse, type ApiVersionsResponse } from '../../protocol/generated/apiVersionsResponse.js';
import { ApiKey } from '../../protocol/generated/apiSchemas.js';
import { defineHandler } from './handler.js';

export function apiVersionsBody(): ApiVersionsResponse {
  return {
    errorCode: ErrorCode.NONE,
    apiKeys: ADVERTISED_APIS.map((api) => ({ apiKey: api.apiKey, minVersion: api.minVersion, maxVersion: api.maxVersion })),
    throttleTimeMs: 0,
  };
}

export const apiVersionsHandler = defineHandler<ApiVersionsRequest, ApiVersionsResponse>({
  apiKey: ApiKey.ApiVersions,
  decode: decodeApiVersionsRequest,
  encode: encodeApiVersionsResponse,
  handle: () => Promise.resolve(apiVersionsBody()),
  errorResponse: (_request, _version, errorCode) => ({ ...apiVersionsBody(), errorCode }),
});
