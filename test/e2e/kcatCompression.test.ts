// kcat -P -z <codec>: the broker stores each batch as librdkafka compressed it (a raw Fetch shows
// the codec in the batch attributes) and kcat -C decompresses the values back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CompressionCodec, type CompressionName } from '../../segments/compression.js';
import { compressionOf } from '../../segments/recordBatch.js';
import { BrokerProcess, kcat, recordsOf, withRawClient } from '../support/brokerProcess.js';
import { kcatConsume } from './records.js';

const RECORDS = 300;
const CODECS: ReadonlyArray<Exclude<CompressionName, 'none'>> = ['gzip', 'snappy', 'lz4', 'zstd'];

function codecId(codec: Exclude<CompressionName, 'none'>): number {
  return CompressionCodec[codec];
}

/** Compressible values, so librdkafka never falls back to sending a batch uncompressed. */
function values(codec: string): string[] {
  return Array.from({ length: RECORDS }, (_, i) => `${codec}-value-${i}-${'abcdefgh'.repeat(16)}`);
}

describe('kcat -P -z gzip|snappy|lz4|zstd', () => {
  let broker: BrokerProcess;

  beforeAll(async () => {
    broker = await BrokerProcess.start();
  });

  afterAll(async () => {
    await broker?.cleanup();
  });

  for (const codec of CODECS) {
    it(`${codec}: stored with codec bits ${codecId(codec)} as sent, and kcat -C reads the values back`, async () => {
      const topic = `codec-${codec}`;
      const sent = values(codec);
      // All 300 records in one batch: librdkafka's default linger (5 ms) otherwise cuts batches by
      // how fast kcat reads stdin, and small batches compress worse (each is compressed alone and
      // carries its own header), which made the size bound below depend on the machine's load.
      await kcat(broker, ['-P', '-t', topic, '-p', '0', '-z', codec, '-X', 'linger.ms=10000', '-X', `batch.num.messages=${RECORDS}`], { input: sent.join('\n') + '\n' });

      const { batches, highWatermark } = await withRawClient(broker, (client) => client.fetchAllBatches(topic, 0));
      expect(highWatermark).toBe(RECORDS);
      expect(batches.length).toBe(1);
      for (const batch of batches) expect(compressionOf(batch.header.attributes), `batch at offset ${batch.header.baseOffset}`).toBe(codecId(codec));
      expect(batches.reduce((sum, batch) => sum + batch.header.recordCount, 0)).toBe(RECORDS);
      // Compressed: the stored batches are smaller than the values they hold.
      expect(batches.reduce((sum, batch) => sum + batch.bytes.length, 0)).toBeLessThan(sent.reduce((sum, value) => sum + value.length, 0) / 4);
      if (codec === 'gzip') expect(recordsOf(batches).map((record) => record.value?.toString('utf8'))).toEqual(sent);

      const read = await kcatConsume(broker, topic, 'beginning');
      expect(read.map((record) => record.value)).toEqual(sent);
      expect(read.map((record) => record.offset)).toEqual(sent.map((_, i) => i));
    });
  }
});
