// The bundled client's partitioner: murmur2 parity with kafkajs's DefaultPartitioner (the Java
// client's algorithm) and sticky choice for records without a key.
import { describe, expect, it } from 'vitest';
import { StickyPartitioner, murmur2, partitionForKey } from '../client/partitioner.js';
import { kafkajs } from './support/brokerProcess.js';
import { SeededRandom } from './support/random.js';

const SEED = 0x5eed_c1;

function kafkajsPartition(key: Buffer | string, partitionCount: number): number {
  const partitioner = kafkajs.Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: partitionCount }, (_, id) => ({ partitionErrorCode: 0, partitionId: id, leader: 0, replicas: [0], isr: [0] }));
  return partitioner({ topic: 't', partitionMetadata, message: { key, value: null } });
}

describe('client partitioner', () => {
  it(`matches kafkajs DefaultPartitioner for 5,000 random binary and text keys (seed ${SEED})`, () => {
    const random = new SeededRandom(SEED);
    for (let i = 0; i < 5_000; i++) {
      const partitionCount = random.int(1, 200);
      const key = random.bool() ? random.bytes(random.int(0, 40)) : `key-${random.int(0, 1e9)}-${'é'.repeat(random.int(0, 3))}`;
      const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
      expect(partitionForKey(bytes, partitionCount), `key ${bytes.toString('hex')} over ${partitionCount}`).toBe(kafkajsPartition(key, partitionCount));
    }
  });

  it('murmur2 gives the Java client values for known keys', () => {
    // From Kafka's UtilsTest.testMurmur2.
    const cases: Array<[string, number]> = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ];
    for (const [text, expected] of cases) expect(murmur2(Buffer.from(text))).toBe(expected);
    expect(murmur2(Buffer.from([97, 98, 99]))).toBe(479470107);
  });

  it('sticky partitioning keeps a partition until a batch of it is sent, then moves', () => {
    const random = new SeededRandom(SEED);
    const sticky = new StickyPartitioner(() => random.next());
    const first = sticky.partition('t', 8);
    for (let i = 0; i < 100; i++) expect(sticky.partition('t', 8)).toBe(first);
    sticky.onBatchSent('t', (first + 1) % 8, 8); // another partition's batch: no move
    expect(sticky.partition('t', 8)).toBe(first);
    sticky.onBatchSent('t', first, 8);
    const second = sticky.partition('t', 8);
    expect(second).not.toBe(first);
    expect(second).toBeGreaterThanOrEqual(0);
    expect(second).toBeLessThan(8);
    const single = new StickyPartitioner(() => random.next());
    single.onBatchSent('u', 0, 1);
    expect(single.partition('u', 1)).toBe(0);
  });
});
