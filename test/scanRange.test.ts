// The scanRange worker runner (engine/workers/tasks/scanRange.ts), called directly on partition
// logs built in temporary directories: ranges across segments, filters, limits, corruption.
import { open, rename } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runScanRange, type ScanFilter, type ScanRangeInput } from '../engine/workers/tasks/scanRange.js';
import { CRC_OFFSET, checkBatch, decodeRecords, encodeBatch, type DecodedRecord, type RecordInput } from '../segments/recordBatch.js';
import { openTestLog, readAll, splitBatches, temporaryDirectory, type TestLog } from './support/logs.js';
import { SeededRandom } from './support/random.js';

const NO_FILTER: ScanFilter = { key: null, headerName: null, headerValue: null, fromTimestamp: -1, toTimestamp: -1 };
const BASE_TIME = 1_700_000_000_000;

let dir: { path: string; remove: () => Promise<void> };
let test: TestLog;

beforeEach(async () => {
  dir = await temporaryDirectory('tidelog-scan-');
  // Small segments: the range below spans many of them.
  test = await openTestLog(dir.path, { segmentBytes: 4096 });
});

afterEach(async () => {
  await test.log.close();
  await dir.remove();
});

/** Record i: key k<i%5> (k<i%5>-long for every eleventh, a key the short one is a prefix of), header "trace" on every third (value t<i%2>), timestamp BASE_TIME + i * 10. */
function recordFor(i: number, random: SeededRandom): RecordInput {
  return {
    key: Buffer.from(i % 11 === 0 ? `k${i % 5}-long` : `k${i % 5}`),
    value: Buffer.concat([Buffer.from(`v${i}-`), random.bytes(random.int(0, 60))]),
    headers: i % 3 === 0 ? [{ key: 'trace', value: Buffer.from(`t${i % 2}`) }, { key: 'other', value: null }] : [],
    timestamp: BASE_TIME + i * 10,
  };
}

/** Appends `count` records in batches of 1-7 (every fourth batch gzip); returns every stored record. */
async function fill(count: number, seed = 7): Promise<DecodedRecord[]> {
  const random = new SeededRandom(seed);
  let i = 0;
  let batchNumber = 0;
  while (i < count) {
    const size = Math.min(random.int(1, 7), count - i);
    const records: RecordInput[] = [];
    for (let j = 0; j < size; j++) records.push(recordFor(i + j, random));
    await test.log.append(encodeBatch(records, { compression: batchNumber % 4 === 3 ? 'gzip' : 'none' }));
    i += size;
    batchNumber++;
  }
  await test.log.flush();
  return (await readAll(test.log)).flatMap((batch) => decodeRecords(batch));
}

function inputFor(startOffset: number, endOffset: number, overrides: Partial<ScanRangeInput> = {}): ScanRangeInput {
  const snapshot = test.log.scanSnapshot();
  return {
    segments: snapshot.segments
      .filter((s) => s.sizeBytes > 0 && (s === snapshot.segments.at(-1) || snapshot.segments[snapshot.segments.indexOf(s) + 1]!.baseOffset > startOffset))
      .map((s) => ({ path: s.path, baseOffset: s.baseOffset, endPosition: s.sizeBytes, startPosition: 0, startBatchBaseOffset: -1 })),
    startOffset,
    endOffset,
    filter: NO_FILTER,
    maxResultBytes: 16 * 1024 * 1024,
    maxRecords: 1_000_000,
    maxScanBytes: 64 * 1024 * 1024,
    maxBatchBytes: 1024 * 1024,
    ...overrides,
  };
}

/** The records of a scan's output, every batch checked (lengths, CRC) first. */
function recordsOf(bytes: Uint8Array): DecodedRecord[] {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return splitBatches(buffer).flatMap((batch) => {
    const check = checkBatch(batch, 0, batch.length, { maxBatchBytes: 16 * 1024 * 1024 });
    expect(check.ok, check.ok ? '' : check.detail).toBe(true);
    return decodeRecords(batch);
  });
}

/** Scans [start, end) request by request (as a client would), returning all records and the requests made. */
async function scanAll(input: ScanRangeInput): Promise<{ records: DecodedRecord[]; requests: number }> {
  const records: DecodedRecord[] = [];
  let next = input.startOffset;
  let requests = 0;
  while (next < input.endOffset) {
    const output = await runScanRange({ ...input, startOffset: next });
    expect(output.problem).toBeNull();
    expect(output.nextOffset).toBeGreaterThan(next);
    records.push(...recordsOf(output.records));
    next = output.nextOffset;
    requests++;
  }
  return { records, requests };
}

describe('scanRange', () => {
  it('returns exactly the records of [from, to) across several segments, in offset order, with their original fields', async () => {
    const all = await fill(400);
    expect(test.log.segmentCount).toBeGreaterThan(5);
    const output = await runScanRange(inputFor(37, 351));
    expect(output.problem).toBeNull();
    expect(output.nextOffset).toBe(351);
    expect(recordsOf(output.records)).toEqual(all.filter((r) => r.offset >= 37 && r.offset < 351));
    expect(output.recordsMatched).toBe(351 - 37);
  });

  it('starts at the hinted position of the start batch, and walks from the segment start when the hint does not fit', async () => {
    const all = await fill(400);
    const want = all.filter((r) => r.offset >= 333);
    const hint = (await test.log.batchPositionOf(333))!;
    expect(hint.position).toBeGreaterThan(0);
    const plain = inputFor(333, 400);
    expect(plain.segments[0]!.baseOffset).toBe(hint.segmentBaseOffset);
    const hinted = { ...plain, segments: plain.segments.map((s, i) => (i === 0 ? { ...s, startPosition: hint.position, startBatchBaseOffset: hint.batchBaseOffset } : s)) };
    expect(recordsOf((await runScanRange(hinted)).records)).toEqual(want);
    // A hint into the middle of a batch, or naming another batch, is ignored rather than reported as corruption.
    for (const wrong of [{ startPosition: hint.position + 5, startBatchBaseOffset: hint.batchBaseOffset }, { startPosition: hint.position, startBatchBaseOffset: hint.batchBaseOffset + 1 }]) {
      const output = await runScanRange({ ...plain, segments: plain.segments.map((s, i) => (i === 0 ? { ...s, ...wrong } : s)) });
      expect(output.problem).toBeNull();
      expect(recordsOf(output.records)).toEqual(want);
    }
  });

  it('filters by key: only that key, original offsets, in gapped batches that pass their checks', async () => {
    const all = await fill(300);
    const output = await runScanRange(inputFor(0, 300, { filter: { ...NO_FILTER, key: Buffer.from('k3') } }));
    const got = recordsOf(output.records);
    const want = all.filter((r) => r.key?.toString() === 'k3');
    expect(got).toEqual(want);
    expect(got.map((r) => r.offset)).toEqual(want.map((r) => r.offset));
    expect(got.length).toBeGreaterThan(40);
    expect(all.some((r) => r.key?.toString() === 'k3-long')).toBe(true);
    expect(output.recordsScanned).toBe(300);
  });

  it('filters by header name, and by header name and value', async () => {
    const all = await fill(200);
    const byName = recordsOf((await runScanRange(inputFor(0, 200, { filter: { ...NO_FILTER, headerName: 'trace' } }))).records);
    expect(byName).toEqual(all.filter((r) => r.headers.some((h) => h.key === 'trace')));
    const byValue = recordsOf((await runScanRange(inputFor(0, 200, { filter: { ...NO_FILTER, headerName: 'trace', headerValue: Buffer.from('t1') } }))).records);
    expect(byValue).toEqual(all.filter((r) => r.headers.some((h) => h.key === 'trace' && h.value?.toString() === 't1')));
    expect(byValue.length).toBeGreaterThan(0);
    expect(byValue.length).toBeLessThan(byName.length);
    const nullValued = recordsOf((await runScanRange(inputFor(0, 200, { filter: { ...NO_FILTER, headerName: 'other', headerValue: Buffer.from('x') } }))).records);
    expect(nullValued).toEqual([]);
  });

  it('filters by timestamp range [from, to), combined with a key filter', async () => {
    const all = await fill(250);
    const from = BASE_TIME + 500;
    const to = BASE_TIME + 1800;
    const got = recordsOf((await runScanRange(inputFor(0, 250, { filter: { ...NO_FILTER, fromTimestamp: from, toTimestamp: to } }))).records);
    expect(got).toEqual(all.filter((r) => r.timestamp >= from && r.timestamp < to));
    const keyed = recordsOf((await runScanRange(inputFor(0, 250, { filter: { ...NO_FILTER, key: Buffer.from('k1'), fromTimestamp: from, toTimestamp: to } }))).records);
    expect(keyed).toEqual(all.filter((r) => r.timestamp >= from && r.timestamp < to && r.key?.toString() === 'k1'));
  });

  it('stops at maxRecords mid-batch and continues from nextOffset to the same records', async () => {
    const all = await fill(200);
    const first = await runScanRange(inputFor(10, 200, { maxRecords: 9, filter: { ...NO_FILTER, key: Buffer.from('k2') } }));
    const firstRecords = recordsOf(first.records);
    expect(firstRecords).toHaveLength(9);
    expect(first.nextOffset).toBe(firstRecords[8]!.offset + 1);
    const { records } = await scanAll(inputFor(10, 200, { maxRecords: 9, filter: { ...NO_FILTER, key: Buffer.from('k2') } }));
    expect(records).toEqual(all.filter((r) => r.offset >= 10 && r.key?.toString() === 'k2'));
  });

  it('bounds bytes scanned and bytes returned per call, and always advances, even with no match', async () => {
    const all = await fill(300);
    const none = await runScanRange(inputFor(0, 300, { maxScanBytes: 1000, filter: { ...NO_FILTER, key: Buffer.from('absent') } }));
    expect(none.records.byteLength).toBe(0);
    expect(none.nextOffset).toBeGreaterThan(0);
    expect(none.nextOffset).toBeLessThan(300);
    expect(none.bytesScanned).toBeLessThan(1000 + 2000);
    const small = await runScanRange(inputFor(0, 300, { maxResultBytes: 500 }));
    expect(small.records.byteLength).toBeLessThanOrEqual(500 + 1000);
    expect(small.nextOffset).toBeLessThan(300);
    const { records, requests } = await scanAll(inputFor(0, 300, { maxResultBytes: 500 }));
    expect(records).toEqual(all);
    expect(requests).toBeGreaterThan(5);
  });

  it('never returns records at or past endOffset, even inside a batch', async () => {
    const all = await fill(100);
    const batchWithInside = all.find((r, index) => index > 0 && all[index - 1]!.offset + 1 === r.offset && r.offset > 50)!;
    const end = batchWithInside.offset;
    const output = await runScanRange(inputFor(0, end));
    expect(recordsOf(output.records).map((r) => r.offset)).toEqual(all.filter((r) => r.offset < end).map((r) => r.offset));
    expect(output.nextOffset).toBe(end);
  });

  it('reports a corrupt batch and returns none of its bytes; the records before it still come back', async () => {
    await fill(120);
    const batches = await readAll(test.log);
    const victim = batches[10]!;
    const victimBase = Number(victim.readBigInt64BE(0));
    // Find the victim in its segment file and flip a byte of its records (covered by the CRC).
    const snapshot = test.log.scanSnapshot();
    const segment = [...snapshot.segments].reverse().find((s) => s.baseOffset <= victimBase)!;
    const handle = await open(segment.path, 'r+');
    try {
      const content = Buffer.alloc(segment.sizeBytes);
      await handle.read(content, 0, content.length, 0);
      const position = content.indexOf(victim.subarray(0, CRC_OFFSET + 4));
      expect(position).toBeGreaterThanOrEqual(0);
      const flipAt = position + victim.length - 1;
      await handle.write(Buffer.from([content[flipAt]! ^ 0xff]), 0, 1, flipAt);
    } finally {
      await handle.close();
    }
    const output = await runScanRange(inputFor(0, 120));
    expect(output.problem?.kind).toBe('corrupt');
    expect(output.problem?.message).toMatch(/crc-mismatch/);
    expect(output.problem?.offset).toBe(victimBase);
    const before = recordsOf(output.records);
    expect(before.length).toBeGreaterThan(0);
    expect(Math.max(...before.map((r) => r.offset))).toBeLessThan(victimBase);
    expect(output.nextOffset).toBe(victimBase);
    const atVictim = await runScanRange(inputFor(victimBase, 120));
    expect(atVictim.problem?.kind).toBe('corrupt');
    expect(atVictim.records.byteLength).toBe(0);
    expect(atVictim.nextOffset).toBe(victimBase);
  });

  it("reports a segment deleted under the scan as 'segment-gone'", async () => {
    await fill(200);
    const input = inputFor(0, 200);
    await rename(input.segments[0]!.path, `${input.segments[0]!.path}.deleted`);
    const output = await runScanRange(input);
    expect(output.problem?.kind).toBe('segment-gone');
    expect(output.records.byteLength).toBe(0);
  });

  it('refuses a bad range', async () => {
    await expect(runScanRange(inputFor(10, 5))).rejects.toThrow(/startOffset <= endOffset/);
    await expect(runScanRange(inputFor(0, 5, { maxRecords: 0 }))).rejects.toThrow(/maxRecords/);
  });
});
