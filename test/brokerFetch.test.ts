import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ErrorCode } from '../protocol/errors.js';
import { encodeApiVersionsRequest } from '../protocol/generated/apiVersionsRequest.js';
import { decodeApiVersionsResponse } from '../protocol/generated/apiVersionsResponse.js';
import { encodeFetchRequest, type FetchRequest } from '../protocol/generated/fetchRequest.js';
import { decodeFetchResponse, type FetchResponse } from '../protocol/generated/fetchResponse.js';
import { encodeProduceRequest } from '../protocol/generated/produceRequest.js';
import { decodeProduceResponse } from '../protocol/generated/produceResponse.js';
import { MalformedRequestError } from '../engine/broker.js';
import { writeRequestHeader } from '../protocol/headers.js';
import { ByteWriter } from '../protocol/wire.js';
import { decodeRecords } from '../segments/recordBatch.js';
import { labelledBatch } from './support/logs.js';
import { sendRequest, startInProcessBroker, type InProcessBroker } from './support/inProcessBroker.js';

let started: InProcessBroker;
beforeEach(async () => {
  started = await startInProcessBroker();
  await started.broker.topics.create('events', 2, -1, {});
});
afterEach(async () => {
  await started.stop();
  expect(started.logger.lines.filter((line) => line.level === 'error')).toEqual([]);
});

function fetchRequest(offset: bigint, options: { maxWaitMs?: number; minBytes?: number; isolationLevel?: number; partitionMaxBytes?: number; maxBytes?: number; partitions?: number[] } = {}): FetchRequest {
  return {
    replicaId: -1,
    maxWaitMs: options.maxWaitMs ?? 0,
    minBytes: options.minBytes ?? 1,
    maxBytes: options.maxBytes ?? 1 << 20,
    isolationLevel: options.isolationLevel ?? 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [{ topic: 'events', partitions: (options.partitions ?? [0]).map((partition) => ({ partition, currentLeaderEpoch: -1, fetchOffset: offset, logStartOffset: -1n, partitionMaxBytes: options.partitionMaxBytes ?? 1 << 20 })) }],
    forgottenTopicsData: [],
    rackId: '',
  };
}

const fetch = (request: FetchRequest, signal?: AbortSignal): Promise<FetchResponse | null> => sendRequest(started.broker, 1, 11, encodeFetchRequest, decodeFetchResponse, request, signal);

async function produce(partition: number, records: Buffer, acks = 1): Promise<void> {
  const response = await sendRequest(started.broker, 0, 7, encodeProduceRequest, decodeProduceResponse, { transactionalId: null, acks, timeoutMs: 5000, topicData: [{ name: 'events', partitionData: [{ index: partition, records }] }] });
  if (acks !== 0) expect(response!.responses[0]!.partitionResponses[0]!.errorCode).toBe(0);
}

describe('Fetch', () => {
  it('long-polls: waits for data, and answers as soon as an append arrives', async () => {
    const started_ = Date.now();
    const pending = fetch(fetchRequest(0n, { maxWaitMs: 20_000 }));
    let answered = false;
    void pending.then(() => (answered = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(answered).toBe(false);
    await produce(0, labelledBatch('late', 3, 1000));
    const response = await pending;
    const partition = response!.responses[0]!.partitions[0]!;
    expect(decodeRecords(partition.records!).map((r) => r.value!.toString())).toEqual(['late-0', 'late-1', 'late-2']);
    // Answered by the append, far before its 20 s max wait.
    expect(Date.now() - started_).toBeLessThan(10_000);
  });

  it('answers empty at maxWaitMs when nothing arrives, and at once when the connection goes away', async () => {
    const empty = await fetch(fetchRequest(0n, { maxWaitMs: 50 }));
    expect(empty!.responses[0]!.partitions[0]).toMatchObject({ errorCode: 0, highWatermark: 0n, records: Buffer.alloc(0) });
    const abort = new AbortController();
    const pending = fetch(fetchRequest(0n, { maxWaitMs: 60_000 }), abort.signal);
    abort.abort();
    expect((await pending)!.responses[0]!.partitions[0]!.records).toEqual(Buffer.alloc(0));
  });

  it('waits for minBytes before answering, and wakes for an append that lands while it starts waiting', async () => {
    await produce(0, labelledBatch('small', 1, 1000));
    const startedAt = Date.now();
    const pending = fetch(fetchRequest(0n, { maxWaitMs: 20_000, minBytes: 500 }));
    let answered = false;
    void pending.then(() => (answered = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(answered).toBe(false);
    await produce(0, labelledBatch('bigger', 5, 1000, { valueBytes: 200 }));
    const response = await pending;
    expect(response!.responses[0]!.partitions[0]!.records!.length).toBeGreaterThanOrEqual(500);
    // Woken by the append, not by its 20 s max wait (a lost wake-up used to cost the full wait).
    expect(Date.now() - startedAt).toBeLessThan(10_000);
  });

  it('read_committed and read_uncommitted both see the log end as high watermark and last stable offset (no transactions)', async () => {
    await produce(1, labelledBatch('x', 4, 1000));
    for (const isolationLevel of [0, 1]) {
      const partition = (await fetch(fetchRequest(0n, { isolationLevel, partitions: [1] })))!.responses[0]!.partitions[0]!;
      expect(partition).toMatchObject({ highWatermark: 4n, lastStableOffset: 4n, logStartOffset: 0n });
      expect(partition.abortedTransactions).toEqual(isolationLevel === 1 ? [] : null);
    }
  });

  it('returns at least one whole batch for the first partition with data, then respects maxBytes (KIP-74)', async () => {
    await produce(0, labelledBatch('big', 10, 1000, { valueBytes: 300 }));
    await produce(1, labelledBatch('other', 10, 1000, { valueBytes: 300 }));
    const response = await fetch(fetchRequest(0n, { maxBytes: 100, partitionMaxBytes: 100, partitions: [0, 1] }));
    const [first, second] = response!.responses[0]!.partitions;
    expect(decodeRecords(first!.records!)).toHaveLength(10);
    expect(second!.records!.length).toBe(0);
  });

  it('answers an offset past the log end with OFFSET_OUT_OF_RANGE', async () => {
    const partition = (await fetch(fetchRequest(5n)))!.responses[0]!.partitions[0]!;
    expect(partition.errorCode).toBe(ErrorCode.OFFSET_OUT_OF_RANGE);
  });

  it('Produce with acks=0 sends no response but appends', async () => {
    await produce(0, labelledBatch('quiet', 2, 1000), 0);
    expect(started.broker.topics.partition('events', 0)!.log.logEndOffset).toBe(2);
  });
});

describe('version negotiation', () => {
  it('an unsupported ApiVersions version gets UNSUPPORTED_VERSION in the v0 layout with our ranges', async () => {
    const writer = new ByteWriter();
    writeRequestHeader(writer, { apiKey: 18, apiVersion: 9, correlationId: 77, clientId: 'future' });
    const response = await started.broker.handleFrame(writer.toBuffer(), { connectionId: 1, remoteAddress: 'x', signal: new AbortController().signal });
    const frame = Buffer.concat(response!.chunks);
    response!.release();
    const { ByteReader } = await import('../protocol/wire.js');
    const reader = new ByteReader(frame, 8);
    expect(frame.readInt32BE(4)).toBe(77);
    const body = decodeApiVersionsResponse(reader, 0);
    expect(body.errorCode).toBe(ErrorCode.UNSUPPORTED_VERSION);
    expect(body.apiKeys.find((api) => api.apiKey === 18)).toEqual({ apiKey: 18, minVersion: 0, maxVersion: 3 });
  });

  it('ApiVersions v3 (flexible, as librdkafka sends it) is answered with the advertised ranges', async () => {
    const body = await sendRequest(started.broker, 18, 3, encodeApiVersionsRequest, decodeApiVersionsResponse, { clientSoftwareName: 'librdkafka', clientSoftwareVersion: '2.0.2' });
    expect(body!.errorCode).toBe(0);
    expect(body!.apiKeys.find((api) => api.apiKey === 0)).toEqual({ apiKey: 0, minVersion: 0, maxVersion: 8 });
  });

  it('an unknown API key or unsupported version of another API is refused as malformed (the connection closes)', async () => {
    for (const [apiKey, apiVersion] of [[999, 0], [1, 99], [0, 12]] as const) {
      const writer = new ByteWriter();
      writeRequestHeader(writer, { apiKey, apiVersion, correlationId: 1, clientId: null });
      await expect(started.broker.handleFrame(writer.toBuffer(), { connectionId: 1, remoteAddress: 'x', signal: new AbortController().signal })).rejects.toBeInstanceOf(MalformedRequestError);
    }
  });
});

describe('shutdown', () => {
  it('beginShutdown answers a parked long poll and a parked JoinGroup at once instead of at their timeouts', async () => {
    const { encodeJoinGroupRequest } = await import('../protocol/generated/joinGroupRequest.js');
    const { decodeJoinGroupResponse } = await import('../protocol/generated/joinGroupResponse.js');
    // __consumer_offsets is created on first use; have it ready so the join parks at once.
    await started.broker.services.groups.ensureReady();
    const startedAt = Date.now();
    const longPoll = fetch(fetchRequest(0n, { maxWaitMs: 25_000 }));
    // Default group.initial.rebalance.delay.ms (3 s) parks the first join of an empty group.
    const subscription = Buffer.from([0, 0, 0, 0, 0, 1, 0, 6, 0x65, 0x76, 0x65, 0x6e, 0x74, 0x73, 0xff, 0xff, 0xff, 0xff]);
    // v3: no MEMBER_ID_REQUIRED round trip, so a first join with no member id parks.
    const join = sendRequest(started.broker, 11, 3, encodeJoinGroupRequest, decodeJoinGroupResponse, {
      groupId: 'g',
      sessionTimeoutMs: 10_000,
      rebalanceTimeoutMs: 20_000,
      memberId: '',
      groupInstanceId: null,
      protocolType: 'consumer',
      protocols: [{ name: 'range', metadata: subscription }],
    });
    await vi.waitFor(() => expect(started.broker.services.groups.coordinator.describeGroup('g').state).toBe('PreparingRebalance'), { timeout: 2000, interval: 5 });
    started.broker.beginShutdown();
    const [poll, joined] = await Promise.all([longPoll, join]);
    expect(poll!.responses[0]!.partitions[0]!.records!.length).toBe(0);
    expect(joined!.errorCode).toBe(ErrorCode.NOT_COORDINATOR);
    expect(Date.now() - startedAt).toBeLessThan(2_500);
  });
});
