// A Broker in this process (no sockets) and a way to send it one request built with the
// generated encoders and get the decoded response back.
import { expect } from 'vitest';
import { Broker } from '../../engine/broker.js';
import { defaultBrokerConfig, type BrokerConfig } from '../../engine/brokerConfig.js';
import { systemClock, type Clock } from '../../engine/clock.js';
import { MemoryLogger } from '../../engine/logger.js';
import { MemoryMetadataStore } from '../../engine/metadataStore.js';
import { readResponseHeader, responseHeaderVersion, writeRequestHeader } from '../../protocol/headers.js';
import { ByteReader, ByteWriter } from '../../protocol/wire.js';
import { temporaryDirectory } from './logs.js';

export interface InProcessBroker {
  broker: Broker;
  config: BrokerConfig;
  logger: MemoryLogger;
  stop(): Promise<void>;
}

export async function startInProcessBroker(overrides: Partial<BrokerConfig> = {}, clock: Clock = systemClock): Promise<InProcessBroker> {
  const dir = await temporaryDirectory('tidelog-broker-');
  const config: BrokerConfig = { ...defaultBrokerConfig(), dataDir: dir.path, ...overrides };
  const logger = new MemoryLogger();
  const broker = await Broker.start({ config, metadataStore: new MemoryMetadataStore(), clock, logger });
  return {
    broker,
    config,
    logger,
    stop: async () => {
      await broker.shutdown();
      await dir.remove();
    },
  };
}

let correlationId = 0;

/** Sends one request frame through the dispatcher; returns the decoded response (null: none sent). */
export async function sendRequest<Request, Response>(
  broker: Broker,
  apiKey: number,
  version: number,
  encode: (writer: ByteWriter, version: number, message: Request) => void,
  decode: (reader: ByteReader, version: number) => Response,
  request: Request,
  signal: AbortSignal = new AbortController().signal,
): Promise<Response | null> {
  const id = ++correlationId;
  const writer = new ByteWriter();
  writeRequestHeader(writer, { apiKey, apiVersion: version, correlationId: id, clientId: 'test' });
  encode(writer, version, request);
  const response = await broker.handleFrame(writer.toBuffer(), { connectionId: 1, remoteAddress: '127.0.0.1:50000', signal });
  if (response === null) return null;
  const frame = Buffer.concat(response.chunks);
  response.release();
  const reader = new ByteReader(frame);
  expect(reader.readInt32()).toBe(frame.length - 4);
  expect(readResponseHeader(reader, responseHeaderVersion(apiKey, version))).toBe(id);
  const body = decode(reader, version);
  expect(reader.remaining).toBe(0);
  return body;
}
