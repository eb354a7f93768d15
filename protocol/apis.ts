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

import { ApiKey, apiSchema, type ApiName } from './generated/apiSchemas.js';

export interface AdvertisedApi {
  readonly apiKey: number;
  readonly name: string;
  readonly minVersion: number;
  readonly maxVersion: number;
}

/** An entry of the tables below: the key comes from the generated table, by the API's name. */
function advertise(name: ApiName, minVersion: number, maxVersion: number): AdvertisedApi {
  return { apiKey: ApiKey[name], name, minVersion, maxVersion };
}

export const ADVERTISED_APIS: readonly AdvertisedApi[] = [
  advertise('Produce', 0, 8),
  advertise('Fetch', 4, 11),
  advertise('ListOffsets', 1, 2),
  advertise('Metadata', 0, 4),
  advertise('OffsetCommit', 2, 5),
  advertise('OffsetFetch', 1, 4),
  advertise('FindCoordinator', 0, 2),
  advertise('JoinGroup', 0, 5),
  advertise('Heartbeat', 0, 3),
  advertise('LeaveGroup', 0, 1),
  advertise('SyncGroup', 0, 3),
  advertise('DescribeGroups', 0, 2),
  advertise('ListGroups', 0, 2),
  advertise('ApiVersions', 0, 3),
  advertise('CreateTopics', 0, 3),
  advertise('DeleteTopics', 0, 1),
  advertise('DeleteRecords', 0, 1),
  advertise('InitProducerId', 0, 1),
  advertise('DescribeConfigs', 0, 2),
  advertise('AlterConfigs', 0, 1),
  advertise('CreatePartitions', 0, 1),
  advertise('DeleteGroups', 0, 1),
  advertise('IncrementalAlterConfigs', 0, 1),
  advertise('OffsetDelete', 0, 0),
  // tidelog's own (protocol/schemas/): filtered range scans for `tidelog replay`. Kafka clients
  // skip API keys they do not know; the bundled client falls back to Fetch where it is missing.
  advertise('ScanRecords', 0, 0),
];

/** Generated and ready to advertise if wanted; left out for the reasons at the top of this file. */
export const NOT_ADVERTISED_APIS: readonly AdvertisedApi[] = [
  // Transactions need a transaction coordinator, which tidelog does not have yet; clients that
  // do not use transactions never send these.
  advertise('AddPartitionsToTxn', 0, 1),
  advertise('AddOffsetsToTxn', 0, 1),
  advertise('EndTxn', 0, 1),
  advertise('TxnOffsetCommit', 0, 1),
  advertise('SaslHandshake', 0, 1),
  advertise('SaslAuthenticate', 0, 1),
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
