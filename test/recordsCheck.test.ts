// The records walk of segments/recordsCheck.ts: every record's structure inside its batch, the
// offset deltas, the count, keys and timestamps; the resumable walk agrees with the one-shot one.
import { describe, expect, it } from 'vitest';
import { RECORDS_OFFSET, encodeBatch, type RecordInput } from '../segments/recordBatch.js';
import { RecordsWalk, type RecordsRules } from '../segments/recordsCheck.js';
import { writeVarint } from '../segments/varint.js';
import { SeededRandom } from './support/random.js';

const T0 = 1_700_000_000_000;

function randomRecords(random: SeededRandom, count: number): RecordInput[] {
  return Array.from({ length: count }, (_, i) => ({
    key: random.bool(0.2) ? null : random.bytes(random.int(0, 20)),
    value: random.bool(0.1) ? null : random.bytes(random.int(0, 300)),
    headers: Array.from({ length: random.int(0, 3) }, (_, h) => ({ key: `h${h}`, value: random.bool(0.2) ? null : random.bytes(random.int(0, 10)) })),
    timestamp: T0 + i * random.int(0, 1000),
  }));
}

function rulesFor(records: readonly RecordInput[], overrides: Partial<RecordsRules> = {}): RecordsRules {
  return { recordCount: records.length, lastOffsetDelta: records.length - 1, denseOffsetDeltas: true, baseTimestamp: records[0]?.timestamp ?? T0, requireKeys: false, timestampRange: null, ...overrides };
}

function areaOf(records: readonly RecordInput[]): Buffer {
  return encodeBatch(records).subarray(RECORDS_OFFSET);
}

/** One record in raw varint form, so a test can break any single field. */
function rawRecord(fields: { attributes?: number; timestampDelta?: number; offsetDelta: number; keyLength?: number; key?: Buffer; valueLength?: number; value?: Buffer; headerCount?: number; headerBytes?: Buffer; trailing?: Buffer }): Buffer {
  const body = Buffer.alloc(4096);
  let position = 0;
  body[position++] = fields.attributes ?? 0;
  position = writeVarint(body, position, fields.timestampDelta ?? 0);
  position = writeVarint(body, position, fields.offsetDelta);
  const key = fields.key ?? Buffer.from('k');
  position = writeVarint(body, position, fields.keyLength ?? key.length);
  position += key.copy(body, position);
  const value = fields.value ?? Buffer.from('value');
  position = writeVarint(body, position, fields.valueLength ?? value.length);
  position += value.copy(body, position);
  position = writeVarint(body, position, fields.headerCount ?? 0);
  if (fields.headerBytes !== undefined) position += fields.headerBytes.copy(body, position);
  if (fields.trailing !== undefined) position += fields.trailing.copy(body, position);
  const length = Buffer.alloc(5);
  const lengthEnd = writeVarint(length, 0, position);
  return Buffer.concat([length.subarray(0, lengthEnd), body.subarray(0, position)]);
}

const baseRules: RecordsRules = { recordCount: 1, lastOffsetDelta: 0, denseOffsetDeltas: true, baseTimestamp: T0, requireKeys: false, timestampRange: null };

describe('RecordsWalk', () => {
  it('accepts every batch encodeBatch makes and reports its largest timestamp (seeded, 200 batches)', () => {
    const random = new SeededRandom(11);
    for (let round = 0; round < 200; round++) {
      const records = randomRecords(random, random.int(1, 40));
      const verdict = RecordsWalk.check(areaOf(records), rulesFor(records));
      expect(verdict, `round ${round}`).toEqual({ ok: true, maxTimestamp: Math.max(...records.map((record) => record.timestamp!)) });
    }
  });

  it('walked a few records per step, reaches the same verdict as in one step (seeded)', () => {
    const random = new SeededRandom(12);
    for (let round = 0; round < 50; round++) {
      const records = randomRecords(random, random.int(1, 60));
      const area = areaOf(records);
      // Break a random byte in half of the rounds so refusals are compared too.
      if (round % 2 === 1) {
        const at = random.int(0, area.length - 1);
        area[at] = area[at]! ^ 0xff;
      }
      const rules = rulesFor(records);
      const whole = RecordsWalk.check(area, rules);
      const walk = new RecordsWalk(area, rules);
      let stepped = walk.step(random.int(1, 5));
      while (stepped === null) stepped = walk.step(random.int(1, 5));
      expect(stepped, `round ${round}`).toEqual(whole);
    }
  });

  const malformed: Array<[string, Buffer, Partial<RecordsRules>, number]> = [
    ['a record length past the area', Buffer.concat([Buffer.from([0x7e]), rawRecord({ offsetDelta: 0 }).subarray(1)]), {}, 0],
    ['a negative record length', Buffer.from([0x01, 0, 0, 0, 0, 0, 0]), {}, 0],
    ['fewer records than recordCount', rawRecord({ offsetDelta: 0 }), { recordCount: 2, lastOffsetDelta: 1 }, 1],
    ['bytes after recordCount records', Buffer.concat([rawRecord({ offsetDelta: 0 }), rawRecord({ offsetDelta: 1 })]), {}, -1],
    ['an offset delta that skips', Buffer.concat([rawRecord({ offsetDelta: 0 }), rawRecord({ offsetDelta: 2 })]), { recordCount: 2, lastOffsetDelta: 1 }, 1],
    ['a first offset delta that is not 0', rawRecord({ offsetDelta: 1 }), {}, 0],
    ['a last offset delta that contradicts the header', Buffer.concat([rawRecord({ offsetDelta: 0 }), rawRecord({ offsetDelta: 3 })]), { recordCount: 2, lastOffsetDelta: 5, denseOffsetDeltas: false }, -1],
    ['offset deltas that go backwards (stored batch)', Buffer.concat([rawRecord({ offsetDelta: 2 }), rawRecord({ offsetDelta: 1 })]), { recordCount: 2, lastOffsetDelta: 2, denseOffsetDeltas: false }, 1],
    ['a key length below -1', rawRecord({ offsetDelta: 0, keyLength: -2, key: Buffer.alloc(0) }), {}, 0],
    ['a key longer than the record', rawRecord({ offsetDelta: 0, keyLength: 200 }), {}, 0],
    ['a value longer than the record', rawRecord({ offsetDelta: 0, valueLength: 200 }), {}, 0],
    ['a value length below -1', rawRecord({ offsetDelta: 0, valueLength: -3, value: Buffer.alloc(0) }), {}, 0],
    ['a negative header count', rawRecord({ offsetDelta: 0, headerCount: -1 }), {}, 0],
    ['more headers than bytes', rawRecord({ offsetDelta: 0, headerCount: 1000 }), {}, 0],
    ['a header with a null key', rawRecord({ offsetDelta: 0, headerCount: 1, headerBytes: Buffer.from([0x01, 0x00]) }), {}, 0],
    ['a header value past the record', rawRecord({ offsetDelta: 0, headerCount: 1, headerBytes: Buffer.from([0x02, 0x61, 0x40]) }), {}, 0],
    ['unexplained bytes after the headers', rawRecord({ offsetDelta: 0, trailing: Buffer.from([1, 2, 3]) }), {}, 0],
    ['a varint longer than 5 bytes', Buffer.concat([Buffer.from([0x0e, 0x00, 0x00]), Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), Buffer.from([0x02, 0x00, 0x00, 0x00, 0x00])]), {}, 0],
  ];

  it.each(malformed)('refuses %s as malformed, naming the record (-1: the batch as a whole)', (_name, area, rules, recordIndex) => {
    const verdict = RecordsWalk.check(area, { ...baseRules, ...rules });
    expect(verdict).toMatchObject({ ok: false, problem: 'malformed', recordIndex });
  });

  it('refuses a record without a key where keys are required, naming it', () => {
    const records: RecordInput[] = [{ key: Buffer.from('a'), value: null }, { key: null, value: Buffer.from('x') }];
    expect(RecordsWalk.check(areaOf(records), rulesFor(records, { requireKeys: true, baseTimestamp: 0 }))).toMatchObject({ ok: false, problem: 'keyless', recordIndex: 1 });
    expect(RecordsWalk.check(areaOf(records), rulesFor(records, { requireKeys: false, baseTimestamp: 0 })).ok).toBe(true);
  });

  it('refuses a timestamp outside the range, and lets a record without timestamp (-1) through', () => {
    const records: RecordInput[] = [{ key: null, value: null, timestamp: T0 }, { key: null, value: null, timestamp: T0 + 5_000 }];
    const range = { min: T0 - 1000, max: T0 + 1000 };
    expect(RecordsWalk.check(areaOf(records), rulesFor(records, { timestampRange: range }))).toMatchObject({ ok: false, problem: 'timestamp', recordIndex: 1 });
    const untimed: RecordInput[] = [{ key: null, value: null, timestamp: -1 }];
    expect(RecordsWalk.check(areaOf(untimed), rulesFor(untimed, { timestampRange: range })).ok).toBe(true);
  });

  it('accepts a stored batch thinned by compaction (gaps in the offset deltas)', () => {
    const area = Buffer.concat([rawRecord({ offsetDelta: 1 }), rawRecord({ offsetDelta: 4 })]);
    expect(RecordsWalk.check(area, { ...baseRules, recordCount: 2, lastOffsetDelta: 4, denseOffsetDeltas: false }).ok).toBe(true);
    expect(RecordsWalk.check(area, { ...baseRules, recordCount: 2, lastOffsetDelta: 4, denseOffsetDeltas: true }).ok).toBe(false);
  });
});
