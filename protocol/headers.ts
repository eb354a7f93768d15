// Request and response headers, chosen by API key and version.
//
// Request header (every field big-endian):
//   v0: api_key i16, api_version i16, correlation_id i32          (only ControlledShutdown v0)
//   v1: v0 + client_id (nullable string, int16 length)              (non-flexible request versions)
//   v2: v1 + tagged-field section                                   (flexible request versions)
// client_id keeps its int16 length even in v2 (RequestHeader.json: "flexibleVersions": "none"), so
// the first four fields of any request can be read without knowing the API.
//
// Response header: v0 = correlation_id i32; v1 = v0 + tagged-field section, used for flexible
// versions, except ApiVersions, whose response header is always v0 (the client cannot yet know
// what the broker supports).

import { ApiKey, isFlexibleVersion } from './generated/apiSchemas.js';
import type { ByteReader, ByteWriter } from './wire.js';

export type RequestHeaderVersion = 0 | 1 | 2;
export type ResponseHeaderVersion = 0 | 1;

export interface RequestHeaderFields {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
}

export interface ParsedRequestHeader extends RequestHeaderFields {
  /**
   * The header version read (for 2, its tagged fields were skipped). null when the API key is
   * unknown to the schemas: the fields above are still valid (the correlation id can be answered),
   * but the reader stands after client_id and the body cannot be decoded.
   */
  headerVersion: RequestHeaderVersion | null;
}

/** null for an API key unknown to the schemas. */
export function requestHeaderVersion(apiKey: number, apiVersion: number): RequestHeaderVersion | null {
  if (apiKey === ApiKey.ControlledShutdown && apiVersion === 0) return 0;
  const flexible = isFlexibleVersion(apiKey, apiVersion);
  if (flexible === undefined) return null;
  return flexible ? 2 : 1;
}

export function responseHeaderVersion(apiKey: number, apiVersion: number): ResponseHeaderVersion {
  if (apiKey === ApiKey.ApiVersions) return 0;
  return isFlexibleVersion(apiKey, apiVersion) === true ? 1 : 0;
}

/**
 * Reads a request header for any API key and version. The version ranges are not checked here:
 * the dispatcher compares them with what we advertise (protocol/apis.ts).
 */
export function readRequestHeader(reader: ByteReader): ParsedRequestHeader {
  const apiKey = reader.readInt16();
  const apiVersion = reader.readInt16();
  const correlationId = reader.readInt32();
  const headerVersion = requestHeaderVersion(apiKey, apiVersion);
  if (headerVersion === 0) return { apiKey, apiVersion, correlationId, clientId: null, headerVersion };
  const clientId = reader.readNullableString();
  if (headerVersion === 2) reader.skipTaggedFields();
  return { apiKey, apiVersion, correlationId, clientId, headerVersion };
}

/** Writes a request header in the version its API key and version call for (the client side). */
export function writeRequestHeader(writer: ByteWriter, header: RequestHeaderFields): void {
  const headerVersion = requestHeaderVersion(header.apiKey, header.apiVersion) ?? 1;
  writer.writeInt16(header.apiKey);
  writer.writeInt16(header.apiVersion);
  writer.writeInt32(header.correlationId);
  if (headerVersion === 0) return;
  writer.writeNullableString(header.clientId);
  if (headerVersion === 2) writer.writeEmptyTaggedFields();
}

export function writeResponseHeader(writer: ByteWriter, correlationId: number, headerVersion: ResponseHeaderVersion): void {
  writer.writeInt32(correlationId);
  if (headerVersion === 1) writer.writeEmptyTaggedFields();
}

/** Reads a response header; returns its correlation id. */
export function readResponseHeader(reader: ByteReader, headerVersion: ResponseHeaderVersion): number {
  const correlationId = reader.readInt32();
  if (headerVersion === 1) reader.skipTaggedFields();
  return correlationId;
}
