// The APIs and version ranges tidelog advertises in its ApiVersions response.
//
// Source: ../shared/kafka-protocol/NOTES.md section 4 ("advertise" column and the optional admin
// extras below it). Why the minimums are low: librdkafka turns features on only when old versions
// fall inside the advertised range (Produce 0 for per-batch compression, Produce 3 + Fetch 4 for
// message format v2, FindCoordinator 0 for groups, InitProducerId 0 for idempotence; NOTES.md
// section 3). kafkajs ignores minimums and uses min(its max, our max), so every maximum here is a
// version kafkajs 2.2.4 implements. An advertised old version that no client sends may still be
// refused by its handler (NOTES.md: "implement only the versions the clients actually send").
//
// Checked against node_modules/kafkajs/src/protocol/requests/: kafkajs 2.2.4 implements
// AlterConfigs v0-1, but not OffsetDelete or IncrementalAlterConfigs. Produce goes to v8 (kafkajs
// stays at its v7): v8 adds the per-record errors of a refused batch (KIP-467) and no other change. IncrementalAlterConfigs is
// advertised anyway (librdkafka and Java admin clients use it; kafkajs ignores APIs it does not
// know). SaslHandshake / SaslAuthenticate (only with
// SASL configured) and the transaction APIs (no transaction coordinator yet) are not advertised.

import { apiSchema } from './generated/apiSchemas.js';

export interface AdvertisedApi {
  readonly apiKey: number;
  readonly name: string;
  readonly minVersion: number;
  readonly maxVersion: number;
}

export const ADVERTISED_APIS: readonly AdvertisedApi[] = [
  { apiKey: 0, name: 'Produce', minVersion: 0, maxVersion: 8 },
  { apiKey: 1, name: 'Fetch', minVersion: 4, maxVersion: 11 },
  { apiKey: 2, name: 'ListOffsets', minVersion: 1, maxVersion: 2 },
  { apiKey: 3, name: 'Metadata', minVersion: 0, maxVersion: 4 },
  { apiKey: 8, name: 'OffsetCommit', minVersion: 2, maxVersion: 5 },
  { apiKey: 9, name: 'OffsetFetch', minVersion: 1, maxVersion: 4 },
  { apiKey: 10, name: 'FindCoordinator', minVersion: 0, maxVersion: 2 },
  { apiKey: 11, name: 'JoinGroup', minVersion: 0, maxVersion: 5 },
  { apiKey: 12, name: 'Heartbeat', minVersion: 0, maxVersion: 3 },
  { apiKey: 13, name: 'LeaveGroup', minVersion: 0, maxVersion: 1 },
  { apiKey: 14, name: 'SyncGroup', minVersion: 0, maxVersion: 3 },
  { apiKey: 15, name: 'DescribeGroups', minVersion: 0, maxVersion: 2 },
  { apiKey: 16, name: 'ListGroups', minVersion: 0, maxVersion: 2 },
  { apiKey: 18, name: 'ApiVersions', minVersion: 0, maxVersion: 3 },
  { apiKey: 19, name: 'CreateTopics', minVersion: 0, maxVersion: 3 },
  { apiKey: 20, name: 'DeleteTopics', minVersion: 0, maxVersion: 1 },
  { apiKey: 21, name: 'DeleteRecords', minVersion: 0, maxVersion: 1 },
  { apiKey: 22, name: 'InitProducerId', minVersion: 0, maxVersion: 1 },
  { apiKey: 32, name: 'DescribeConfigs', minVersion: 0, maxVersion: 2 },
  { apiKey: 33, name: 'AlterConfigs', minVersion: 0, maxVersion: 1 },
  { apiKey: 37, name: 'CreatePartitions', minVersion: 0, maxVersion: 1 },
  { apiKey: 42, name: 'DeleteGroups', minVersion: 0, maxVersion: 1 },
  { apiKey: 44, name: 'IncrementalAlterConfigs', minVersion: 0, maxVersion: 1 },
  { apiKey: 47, name: 'OffsetDelete', minVersion: 0, maxVersion: 0 },
  // tidelog's own (protocol/schemas/): filtered range scans for `tidelog replay`. Kafka clients
  // skip API keys they do not know; the bundled client falls back to Fetch where it is missing.
  { apiKey: 32000, name: 'ScanRecords', minVersion: 0, maxVersion: 0 },
];

/** Generated and ready to advertise if wanted; left out for the reasons at the top of this file. */
export const NOT_ADVERTISED_APIS: readonly AdvertisedApi[] = [
  // Transactions need a transaction coordinator, which tidelog does not have yet; clients that
  // do not use transactions never send these.
  { apiKey: 24, name: 'AddPartitionsToTxn', minVersion: 0, maxVersion: 1 },
  { apiKey: 25, name: 'AddOffsetsToTxn', minVersion: 0, maxVersion: 1 },
  { apiKey: 26, name: 'EndTxn', minVersion: 0, maxVersion: 1 },
  { apiKey: 28, name: 'TxnOffsetCommit', minVersion: 0, maxVersion: 1 },
  { apiKey: 17, name: 'SaslHandshake', minVersion: 0, maxVersion: 1 },
  { apiKey: 36, name: 'SaslAuthenticate', minVersion: 0, maxVersion: 1 },
];

const BY_KEY: ReadonlyMap<number, AdvertisedApi> = new Map(ADVERTISED_APIS.map((api) => [api.apiKey, api]));

// Checked at load: each advertised range is inside the schema's and has generated codecs.
for (const api of [...ADVERTISED_APIS, ...NOT_ADVERTISED_APIS]) {
  const schema = apiSchema(api.apiKey);
  if (schema === undefined || schema.name !== api.name || !schema.generated) {
    throw new Error(`advertised API ${api.name} (${api.apiKey}) has no generated codec`);
  }
  if (api.minVersion < schema.minVersion || api.maxVersion > schema.maxVersion || api.minVersion > api.maxVersion) {
    throw new Error(`advertised ${api.name} ${api.minVersion}-${api.maxVersion} is outside ${schema.minVersion}-${schema.maxVersion}`);
  }
}
if (BY_KEY.size !== ADVERTISED_APIS.length) throw new Error('an API key is advertised twice');

export function advertisedApi(apiKey: number): AdvertisedApi | undefined {
  return BY_KEY.get(apiKey);
}

/** Whether we advertise this API key at this version. */
export function isAdvertised(apiKey: number, apiVersion: number): boolean {
  const api = BY_KEY.get(apiKey);
  return api !== undefined && apiVersion >= api.minVersion && apiVersion <= api.maxVersion;
}
