// The generated API key table (protocol/generated/apiSchemas.ts): one name per key, the same keys
// as the schema table, and the one every advertised API, handler and client table takes its key from.
import { describe, expect, it } from 'vitest';
import { AdminApiKey, ApiKey as ClientApiKey } from '../client/index.js';
import { adminHandlers } from '../engine/handlers/admin.js';
import { groupHandlers } from '../engine/handlers/groups.js';
import { ADVERTISED_APIS, NOT_ADVERTISED_APIS } from '../protocol/apis.js';
import { API_SCHEMAS, ApiKey, type ApiName } from '../protocol/generated/apiSchemas.js';

describe('the generated API key table', () => {
  it('names every API of the schemas, tidelog\'s ScanRecords included, by its key', () => {
    expect(Object.entries(ApiKey)).toEqual(API_SCHEMAS.map((api) => [api.name, api.apiKey]));
    expect(ApiKey.Produce).toBe(0);
    expect(ApiKey.ApiVersions).toBe(18);
    expect(ApiKey.ScanRecords).toBe(32000);
  });

  it('gives the advertised tables, the handlers and the client tables their keys', () => {
    for (const api of [...ADVERTISED_APIS, ...NOT_ADVERTISED_APIS]) expect(api.apiKey, api.name).toBe(ApiKey[api.name as ApiName]);
    const names = new Map(API_SCHEMAS.map((api) => [api.apiKey, api.name]));
    for (const handler of [...adminHandlers, ...groupHandlers]) expect(names.has(handler.apiKey), String(handler.apiKey)).toBe(true);
    expect(ClientApiKey).toBe(ApiKey);
    expect(AdminApiKey).toBe(ApiKey);
  });
});
