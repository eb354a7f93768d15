// Produce requests whose record batch is damaged, sent raw (generated encoders) to a broker
// process: each is refused with CORRUPT_MESSAGE on a connection that stays open, the log is
// untouched, the broker keeps running and logs no ERROR (a client's bad batch is an operating
// error, not a broker failure).
//
// Three of these fail today (product bugs, see the report of the e2e suite); the malformed-input
// fuzzer found them.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/errors.js';
import { encodeProduceRequest } from '../../protocol/generated/produceRequest.js';
import { decodeProduceResponse, type ProduceResponsePartitionProduceResponse } from '../../protocol/generated/produceResponse.js';
import { CRC_OFFSET, LAST_OFFSET_DELTA_OFFSET, computeBatchCrc, encodeBatch } from '../../segments/recordBatch.js';
import { BrokerProcess, RawKafkaClient, withRawClient, createTopic } from '../support/brokerProcess.js';

function batchOf(count: number, valueBytes = 2): Buffer {
  return encodeBatch(Array.from({ length: count }, (_, i) => ({ key: Buffer.from(`k${i}`), value: Buffer.alloc(valueBytes, 0x61 + (i % 26)), timestamp: 1_700_000_000_000 + i })));
}

async function produceRaw(client: RawKafkaClient, topic: string, batch: Buffer): Promise<ProduceResponsePartitionProduceResponse> {
  const response = await client.request(0, 7, (writer, version) => encodeProduceRequest(writer, version, { transactionalId: null, acks: -1, timeoutMs: 5_000, topicData: [{ name: topic, partitionData: [{ index: 0, records: batch }] }] }), decodeProduceResponse);
  const answer = response.responses[0]?.partitionResponses[0];
  if (answer === undefined) throw new Error('Produce answered without the partition');
  return answer;
}

describe('Produce with a damaged record batch', () => {
  let broker: BrokerProcess;

  beforeAll(async () => {
    broker = await BrokerProcess.start();
  });

  beforeEach(async () => {
    // A test that crashed the broker must not take the next one with it.
    await broker.ensureRunning();
  });

  afterAll(async () => {
    await broker?.cleanup();
  });

  /**
   * Sends `damaged` (on an idle partition, so the broker takes the lone-append path), then three
   * good batches of 3 KB on the same connection (enough to need an offset index entry). Expected:
   * `errorCode` (CORRUPT_MESSAGE for bytes that fail their CRC, INVALID_RECORD for a well-formed
   * batch whose contents are inconsistent, as Kafka answers since KIP-467), the log end unchanged,
   * the good batches appended right after it, the broker alive and no ERROR line. Compared as one
   * object so a failure shows the whole outcome.
   */
  async function expectRefused(topic: string, damaged: Buffer, errorCode: number): Promise<void> {
    await createTopic(broker, topic);
    const fromLine = broker.lineCount;
    const client = await RawKafkaClient.connect(broker.port);
    let outcome: { damaged: string; logEndMoved: string; good: string[] };
    try {
      const logEnd = (await client.listOffsets(topic, 0, -1n)).offset ?? -1n;
      const answer = await produceRaw(client, topic, damaged);
      const logEndAfter = (await client.listOffsets(topic, 0, -1n)).offset ?? -1n;
      const good: string[] = [];
      for (let i = 0; i < 3; i++) {
        const result = await produceRaw(client, topic, batchOf(3, 1_000)).catch(() => null);
        good.push(result === null ? 'no response' : `error ${result.errorCode} at +${result.baseOffset - logEnd}`);
      }
      outcome = { damaged: `error ${answer.errorCode}`, logEndMoved: `by ${logEndAfter - logEnd}`, good };
    } finally {
      client.close();
    }
    expect({ ...outcome, alive: broker.isAlive(), errorLines: broker.lines.slice(fromLine).filter((line) => / ERROR |^\s+at /.test(line)) }, broker.stderrTail(12)).toEqual({
      damaged: `error ${errorCode}`,
      logEndMoved: 'by 0',
      good: ['error 0 at +0', 'error 0 at +3', 'error 0 at +6'],
      alive: true,
      errorLines: [],
    });
  }

  it('a wrong CRC is refused with CORRUPT_MESSAGE and logs no ERROR', async () => {
    const batch = batchOf(3);
    batch.writeUInt32BE((batch.readUInt32BE(CRC_OFFSET) ^ 0x5a5a5a5a) >>> 0, CRC_OFFSET);
    await expectRefused('bad-crc', batch, ErrorCode.CORRUPT_MESSAGE);
  });

  it('lastOffsetDelta 2^31-1 with 3 records (valid CRC) is refused with INVALID_RECORD and the broker keeps running', async () => {
    const batch = batchOf(3);
    batch.writeInt32BE(0x7fffffff, LAST_OFFSET_DELTA_OFFSET);
    batch.writeUInt32BE(computeBatchCrc(batch), CRC_OFFSET);
    await expectRefused('huge-last-offset-delta', batch, ErrorCode.INVALID_RECORD);
  });

  it('a record count that does not match lastOffsetDelta + 1 (valid CRC) is refused with INVALID_RECORD, as Kafka refuses it', async () => {
    const batch = batchOf(3);
    batch.writeInt32BE(1_000, LAST_OFFSET_DELTA_OFFSET);
    batch.writeUInt32BE(computeBatchCrc(batch), CRC_OFFSET);
    await expectRefused('count-mismatch', batch, ErrorCode.INVALID_RECORD);
  });

  it('a well-formed batch is accepted (control case)', async () => {
    await createTopic(broker, 'well-formed');
    await withRawClient(broker, async (client) => {
      expect(await produceRaw(client, 'well-formed', batchOf(4))).toMatchObject({ errorCode: 0, baseOffset: 0n });
      expect((await client.listOffsets('well-formed', 0, -1n)).offset).toBe(4n);
    });
  });
});
