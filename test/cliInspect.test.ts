// `tidelog inspect dump|verify` against real segment files built with encodeBatch (and once with
// the broker's own PartitionLog), then corrupted the ways disks corrupt them: a flipped byte, a
// flipped bit in a field the CRC does not cover, a torn tail, trailing garbage, a bad index.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../cli/main.js';
import { MAX_PROBLEMS_PER_FILE, verifyPartitionDir, type VerifyReport } from '../cli/verifyPartition.js';
import { LEADER_EPOCH_CHECKPOINT } from '../engine/log/leaderEpochCache.js';
import { resolveLogConfig } from '../engine/log/logConfig.js';
import { LogManager } from '../engine/log/logManager.js';
import { silentLogger } from '../engine/logger.js';
import { writeCheckpoint } from '../segments/checkpointFile.js';
import { OffsetIndex } from '../segments/offsetIndex.js';
import {
  ATTRIBUTES_OFFSET,
  BASE_OFFSET_OFFSET,
  CRC_OFFSET,
  MAX_TIMESTAMP_OFFSET,
  PARTITION_LEADER_EPOCH_OFFSET,
  RECORDS_OFFSET,
  computeBatchCrc,
  encodeBatch,
  type EncodeBatchOptions,
  type RecordInput,
} from '../segments/recordBatch.js';
import { LOG_SUFFIX, OFFSET_INDEX_SUFFIX, TIME_INDEX_SUFFIX, segmentFileName } from '../segments/segmentNames.js';
import { TimeIndex } from '../segments/timeIndex.js';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const T0 = 1_700_000_000_000;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function scratchDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tidelog-inspect-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `tidelog <args>` in this process with stdout and stderr captured. */
async function runCli(args: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const capture = (append: (text: string) => void) => (chunk: string | Uint8Array): boolean => {
    append(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  };
  const outSpy = vi.spyOn(process.stdout, 'write').mockImplementation(capture((text) => (stdout += text)) as typeof process.stdout.write);
  const errSpy = vi.spyOn(process.stderr, 'write').mockImplementation(capture((text) => (stderr += text)) as typeof process.stderr.write);
  try {
    const code = await main(args);
    return { code, stdout, stderr };
  } finally {
    outSpy.mockRestore();
    errSpy.mockRestore();
  }
}

// ---------------------------------------------------------------------------------------------
// Building segment files

interface BatchSpec {
  records: RecordInput[];
  options?: EncodeBatchOptions;
}

interface BuiltBatch {
  position: number;
  size: number;
  baseOffset: number;
  lastOffset: number;
}

interface BuiltSegment {
  baseOffset: number;
  logPath: string;
  indexPath: string;
  timeIndexPath: string;
  batches: BuiltBatch[];
}

function records(firstOffset: number, count: number, prefix = 'value'): RecordInput[] {
  return Array.from({ length: count }, (_, i) => ({
    key: Buffer.from(`key-${firstOffset + i}`),
    value: Buffer.from(`${prefix}-${firstOffset + i}`),
    timestamp: T0 + (firstOffset + i) * 1000,
  }));
}

/**
 * Writes `<base>.log` with the batches back to back (offsets assigned from `baseOffset`, or from
 * `firstOffsets` when given), and, as the broker would, a .index and .timeindex entry for every
 * batch but the first.
 */
async function writeSegment(dir: string, baseOffset: number, specs: BatchSpec[], firstOffsets?: number[]): Promise<BuiltSegment> {
  const buffers: Buffer[] = [];
  const batches: BuiltBatch[] = [];
  const offsetIndex = new OffsetIndex(baseOffset, 1000);
  const timeIndex = new TimeIndex(baseOffset, 1000);
  let position = 0;
  let nextOffset = baseOffset;
  let maxTimestamp = -1;
  let maxTimestampOffset = baseOffset;
  for (const [i, spec] of specs.entries()) {
    const batchBase = firstOffsets?.[i] ?? nextOffset;
    const buffer = encodeBatch(spec.records, { ...spec.options, baseOffset: batchBase });
    const lastOffset = batchBase + Math.max(spec.records.length - 1, 0);
    const batchMax = buffer.readBigInt64BE(MAX_TIMESTAMP_OFFSET);
    if (Number(batchMax) > maxTimestamp) {
      maxTimestamp = Number(batchMax);
      maxTimestampOffset = lastOffset;
    }
    if (i > 0) {
      offsetIndex.append(lastOffset, position);
      timeIndex.maybeAppend(maxTimestamp, maxTimestampOffset);
    }
    buffers.push(buffer);
    batches.push({ position, size: buffer.length, baseOffset: batchBase, lastOffset });
    position += buffer.length;
    nextOffset = lastOffset + 1;
  }
  const segment: BuiltSegment = {
    baseOffset,
    logPath: join(dir, segmentFileName(baseOffset, LOG_SUFFIX)),
    indexPath: join(dir, segmentFileName(baseOffset, OFFSET_INDEX_SUFFIX)),
    timeIndexPath: join(dir, segmentFileName(baseOffset, TIME_INDEX_SUFFIX)),
    batches,
  };
  await writeFile(segment.logPath, Buffer.concat(buffers));
  await writeFile(segment.indexPath, offsetIndex.toBuffer());
  await writeFile(segment.timeIndexPath, timeIndex.toBuffer());
  return segment;
}

/**
 * A healthy partition: segment 0 holds offsets 0..5 in epoch 0 (batches 0..2, 3..4, 5), segment 6
 * holds 6..9 in epoch 3 (batches 6..8, 9), with a leader-epoch-checkpoint saying so.
 */
async function goodPartition(): Promise<{ dir: string; first: BuiltSegment; second: BuiltSegment }> {
  const dir = join(await scratchDir(), 'orders-0');
  await mkdir(dir);
  const first = await writeSegment(dir, 0, [
    { records: records(0, 3), options: { partitionLeaderEpoch: 0 } },
    { records: records(3, 2), options: { partitionLeaderEpoch: 0 } },
    { records: records(5, 1), options: { partitionLeaderEpoch: 0 } },
  ]);
  const second = await writeSegment(dir, 6, [
    { records: records(6, 3), options: { partitionLeaderEpoch: 3 } },
    { records: records(9, 1), options: { partitionLeaderEpoch: 3 } },
  ]);
  await writeCheckpoint(join(dir, LEADER_EPOCH_CHECKPOINT), [
    [0, 0],
    [3, 6],
  ]);
  return { dir, first, second };
}

async function flipBits(path: string, position: number, mask: number): Promise<void> {
  const bytes = await readFile(path);
  bytes[position] = bytes[position]! ^ mask;
  await writeFile(path, bytes);
}

function problemsIn(report: VerifyReport, fileName: string): VerifyReport['problems'] {
  return report.problems.filter((problem) => problem.file.endsWith(fileName));
}

// ---------------------------------------------------------------------------------------------

describe('tidelog inspect dump', () => {
  it('lists every batch with offsets, position, size, timestamps, producer fields, codec, epoch and CRC status', async () => {
    const { first } = await goodPartition();
    const result = await runCli(['inspect', 'dump', first.logPath]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = result.stdout.split('\n').filter((line) => line.startsWith('batch '));
    expect(lines).toHaveLength(3);
    for (const [i, batch] of first.batches.entries()) {
      expect(lines[i]).toContain(`position=${batch.position} size=${batch.size} baseOffset=${batch.baseOffset} lastOffset=${batch.lastOffset}`);
      expect(lines[i]).toContain(`baseTimestamp=${T0 + batch.baseOffset * 1000}`);
      expect(lines[i]).toContain(`maxTimestamp=${T0 + batch.lastOffset * 1000}`);
      expect(lines[i]).toContain('producerId=-1 producerEpoch=-1 baseSequence=-1 codec=none attributes=0x0000 []');
      expect(lines[i]).toContain('partitionLeaderEpoch=0 crc=ok 0x');
    }
    expect(lines[0]).toContain('count=3');
    expect(result.stdout).not.toContain('record offset=');
    expect(result.stdout).toContain('3 batches, ');
    expect(result.stdout).toContain('no problems');
  });

  it('with --records prints each record (UTF-8 text as utf8:"...", other bytes as base64:..., null as null) and its headers', async () => {
    const dir = await scratchDir();
    const segment = await writeSegment(dir, 0, [
      {
        records: [
          { key: Buffer.from('user-1'), value: Buffer.from('héllo'), timestamp: T0, headers: [{ key: 'trace', value: Buffer.from('abc') }] },
          { key: null, value: Buffer.from([0x00, 0xff, 0x10]), timestamp: T0 + 5, headers: [{ key: 'nul', value: null }] },
        ],
      },
    ]);
    const result = await runCli(['inspect', 'dump', segment.logPath, '--records']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`record offset=0 timestamp=${T0} (2023-11-14T22:13:20.000Z) key=utf8:"user-1" value=utf8:"héllo" headers=["trace"=utf8:"abc"]`);
    expect(result.stdout).toContain(`record offset=1 timestamp=${T0 + 5} (2023-11-14T22:13:20.005Z) key=null value=base64:AP8Q headers=["nul"=null]`);
  });

  it('--json prints one document whose batches, flags, producer fields and decoded records match what was written', async () => {
    const dir = await scratchDir();
    const segment = await writeSegment(dir, 0, [
      { records: records(0, 2), options: { partitionLeaderEpoch: 2 } },
      { records: records(2, 3, 'zipped'), options: { compression: 'gzip', producerId: 77, producerEpoch: 4, baseSequence: 10, transactional: true } },
      { records: [{ key: Buffer.from([0, 0, 0, 1]), value: Buffer.from([0, 0, 0, 0, 0, 1]), timestamp: T0 }], options: { control: true, transactional: true } },
      { records: records(6, 1), options: { logAppendTime: true } },
    ]);
    const result = await runCli(['inspect', 'dump', segment.logPath, '--json', '--records']);
    expect(result.code).toBe(0);
    const document = JSON.parse(result.stdout) as {
      batches: Array<Record<string, unknown> & { records: Array<Record<string, unknown>> }>;
      problems: unknown[];
      segmentBaseOffset: number;
      batchCount: number;
    };
    expect(document.problems).toEqual([]);
    expect(document.segmentBaseOffset).toBe(0);
    expect(document.batchCount).toBe(4);
    expect(document.batches.map((batch) => [batch.baseOffset, batch.lastOffset, batch.position, batch.sizeBytes])).toEqual(
      segment.batches.map((batch) => [batch.baseOffset, batch.lastOffset, batch.position, batch.size]),
    );
    const [plain, zipped, control, appendTime] = document.batches;
    expect(plain).toMatchObject({ partitionLeaderEpoch: 2, codec: 'none', recordCount: 2, producerId: -1, crc: { status: 'ok' } });
    expect(plain!.records).toEqual([
      { offset: 0, timestamp: T0, key: { encoding: 'utf8', data: 'key-0' }, value: { encoding: 'utf8', data: 'value-0' }, headers: [] },
      { offset: 1, timestamp: T0 + 1000, key: { encoding: 'utf8', data: 'key-1' }, value: { encoding: 'utf8', data: 'value-1' }, headers: [] },
    ]);
    expect(zipped).toMatchObject({
      codec: 'gzip',
      producerId: 77,
      producerEpoch: 4,
      baseSequence: 10,
      attributes: { raw: 0x11, transactional: true, control: false, logAppendTime: false },
    });
    expect(zipped!.records.map((record) => record.value)).toEqual(['zipped-2', 'zipped-3', 'zipped-4'].map((data) => ({ encoding: 'utf8', data })));
    expect(control).toMatchObject({ attributes: { transactional: true, control: true, logAppendTime: false } });
    expect(control!.records[0]).toMatchObject({ key: { encoding: 'base64', data: 'AAAAAQ==' } });
    expect(appendTime).toMatchObject({ attributes: { raw: 0x08, logAppendTime: true } });
  });

  it('says on the batch line when a compressed records area does not decode, and exits 0', async () => {
    const dir = await scratchDir();
    const segment = await writeSegment(dir, 0, [{ records: records(0, 2) }]);
    // Relabel the plain batch as snappy (codec 2) with a valid CRC: its records area is not snappy.
    const bytes = await readFile(segment.logPath);
    bytes.writeInt16BE(2, ATTRIBUTES_OFFSET);
    bytes.writeUInt32BE(computeBatchCrc(bytes), CRC_OFFSET);
    await writeFile(segment.logPath, bytes);

    const text = await runCli(['inspect', 'dump', segment.logPath, '--records']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^batch position=0 .*codec=snappy .*crc=ok .*records=not-decoded \(snappy records area does not decode/m);
    const json = await runCli(['inspect', 'dump', segment.logPath, '--records', '--json']);
    expect(json.code).toBe(0);
    const document = JSON.parse(json.stdout) as { batches: Array<{ codec: string; records: unknown; recordsNotDecoded: string }>; problems: unknown[] };
    expect(document.problems).toEqual([]);
    expect(document.batches[0]).toMatchObject({ codec: 'snappy', records: null });
    expect(document.batches[0]!.recordsNotDecoded).toContain('snappy');
  });

  it('reports a torn last batch with its position, stops there and exits 1 (text and --json)', async () => {
    const { first } = await goodPartition();
    const torn = first.batches[2]!;
    await truncate(first.logPath, torn.position + torn.size - 10);

    const text = await runCli(['inspect', 'dump', first.logPath]);
    expect(text.code).toBe(1);
    expect(text.stdout.split('\n').filter((line) => line.startsWith('batch '))).toHaveLength(2);
    expect(text.stdout).toContain(`BAD BATCH position=${torn.position} (base offset 5): truncated: batch declares ${torn.size} bytes but ${torn.size - 10} remain`);

    const json = await runCli(['inspect', 'dump', first.logPath, '--json']);
    expect(json.code).toBe(1);
    const document = JSON.parse(json.stdout) as { batches: Array<{ baseOffset: number }>; problems: unknown[]; bytesRead: number };
    expect(document.batches.map((batch) => batch.baseOffset)).toEqual([0, 3]);
    expect(document.bytesRead).toBe(torn.position);
    expect(document.problems).toEqual([{ position: torn.position, baseOffset: 5, problem: 'truncated', detail: `batch declares ${torn.size} bytes but ${torn.size - 10} remain` }]);
  });

  it('shows a batch whose CRC fails with the stored and computed CRC, then stops with exit 1', async () => {
    const { first } = await goodPartition();
    const bad = first.batches[1]!;
    await flipBits(first.logPath, bad.position + RECORDS_OFFSET + 3, 0x01);
    const result = await runCli(['inspect', 'dump', first.logPath, '--json']);
    expect(result.code).toBe(1);
    const document = JSON.parse(result.stdout) as { batches: Array<{ baseOffset: number; crc: { status: string; stored: string; computed: string } }>; problems: Array<{ problem: string; position: number }> };
    expect(document.batches.map((batch) => [batch.baseOffset, batch.crc.status])).toEqual([
      [0, 'ok'],
      [3, 'mismatch'],
    ]);
    const crc = document.batches[1]!.crc;
    expect(crc.stored).not.toBe(crc.computed);
    expect(document.problems).toEqual([{ position: bad.position, baseOffset: 3, problem: 'crc-mismatch', detail: `stored CRC ${crc.stored}, computed ${crc.computed}` }]);
    const text = await runCli(['inspect', 'dump', first.logPath]);
    expect(text.stdout).toContain(`crc=MISMATCH stored ${crc.stored} computed ${crc.computed}`);
  });

  it('reports records that do not decode inside a CRC-valid batch as bad-records, and goes on to the next batch', async () => {
    const dir = await scratchDir();
    const segment = await writeSegment(dir, 0, [{ records: records(0, 2) }, { records: records(2, 1) }]);
    const bytes = await readFile(segment.logPath);
    bytes[RECORDS_OFFSET] = 0x7e; // first record's length varint: 63 bytes, past the records area
    bytes.writeUInt32BE(computeBatchCrc(bytes, 0, segment.batches[0]!.size), CRC_OFFSET);
    await writeFile(segment.logPath, bytes);
    const result = await runCli(['inspect', 'dump', segment.logPath, '--records', '--json']);
    expect(result.code).toBe(1);
    const document = JSON.parse(result.stdout) as { batches: Array<{ baseOffset: number; records: unknown[] | null; crc: { status: string } }>; problems: Array<Record<string, unknown>> };
    expect(document.batches.map((batch) => [batch.baseOffset, batch.crc.status, batch.records === null ? null : batch.records.length])).toEqual([
      [0, 'ok', null],
      [2, 'ok', 1],
    ]);
    expect(document.problems).toMatchObject([{ position: 0, baseOffset: 0, problem: 'bad-records', detail: expect.stringContaining('record 0 of batch at offset 0') as unknown }]);
  });

  it('refuses a missing file, a directory and a non-segment file with one stderr line and exit 1', async () => {
    const dir = await scratchDir();
    const missing = await runCli(['inspect', 'dump', join(dir, '00000000000000000000.log')]);
    expect(missing).toEqual({ code: 1, stdout: '', stderr: `tidelog: no such file: ${join(dir, '00000000000000000000.log')}\n` });
    const directory = await runCli(['inspect', 'dump', dir]);
    expect(directory.code).toBe(1);
    expect(directory.stderr).toMatch(/^tidelog: .* is a directory; dump takes one segment \.log file.*\n$/);
    const other = join(dir, 'notes.txt');
    await writeFile(other, 'hello');
    const wrongName = await runCli(['inspect', 'dump', other]);
    expect(wrongName.code).toBe(1);
    expect(wrongName.stderr).toBe(`tidelog: ${other} is not a segment .log file (expected a name like 00000000000000000000.log)\n`);
    expect(wrongName.stderr.split('\n')).toHaveLength(2);
  });

  it('leaves usage errors to yargs: exit 2', async () => {
    expect((await runCli(['inspect'])).code).toBe(2);
    expect((await runCli(['inspect', 'dump'])).code).toBe(2);
    expect((await runCli(['inspect', 'verify', '/tmp', '--no-such-flag'])).code).toBe(2);
  });
});

describe('tidelog inspect verify', () => {
  it('exits 0 on a good partition directory, having checked every batch, index and leader epoch', async () => {
    const { dir, first, second } = await goodPartition();
    const result = await runCli(['inspect', 'verify', dir]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('00000000000000000000.log  offsets 0..5  3 batches');
    expect(result.stdout).toContain('00000000000000000006.log  offsets 6..9  2 batches');
    expect(result.stdout).toContain('leader epochs checked');
    expect(result.stdout).toMatch(/OK: no problems\n$/);

    const report = await verifyPartitionDir(dir);
    const logBytes = [...first.batches, ...second.batches].reduce((sum, batch) => sum + batch.size, 0);
    expect(report).toMatchObject({ segmentsChecked: 2, batches: 5, bytes: logBytes, leaderEpochsChecked: true, problems: [], problemsNotListed: 0 });
    expect(report.segments.map((segment) => [segment.offsetIndexEntries, segment.timeIndexEntries])).toEqual([
      [2, 2],
      [1, 1],
    ]);
  });

  it('accepts a partition directory the broker wrote (PartitionLog through LogManager, rolled segments and their indexes)', async () => {
    const dataDir = await scratchDir();
    const manager = await LogManager.open({ dataDir, logger: silentLogger, configFor: () => resolveLogConfig({ segmentBytes: 1500, indexIntervalBytes: 150 }) });
    const log = await manager.getOrCreateLog('events', 0);
    for (let i = 0; i < 40; i++) {
      // Timestamps jump around so the time index only grows at some entries.
      await log.append(encodeBatch(records(i * 10, 1 + (i % 3)).map((record, j) => ({ ...record, timestamp: T0 + ((i * 7 + j) % 11) * 1000 }))));
    }
    await manager.close();
    const dir = join(dataDir, 'events-0');
    expect((await readdir(dir)).filter((name) => name.endsWith('.log')).length).toBeGreaterThan(2);
    const report = await verifyPartitionDir(dir);
    expect(report.problems).toEqual([]);
    expect(report.batches).toBe(40);
    expect(report.leaderEpochsChecked).toBe(true);
    expect(report.segments.every((segment) => segment.offsetIndexEntries !== null && segment.offsetIndexEntries > 0)).toBe(true);
    expect((await runCli(['inspect', 'verify', dir])).code).toBe(0);
  });

  it('given a data directory, verifies each partition directory in it (on worker threads) and exits 1 if any is corrupt', async () => {
    const dataDir = await scratchDir();
    const partitionNames = ['orders-2', 'orders-10', 'payments-0'];
    const segments = new Map<string, BuiltSegment>();
    for (const name of partitionNames) {
      const dir = join(dataDir, name);
      await mkdir(dir);
      segments.set(name, await writeSegment(dir, 0, [{ records: records(0, 3) }, { records: records(3, 2) }, { records: records(5, 1) }]));
    }
    // What else a data directory holds: the metadata store, checkpoints, a partition deleted half-way.
    await mkdir(join(dataDir, 'meta'));
    await writeFile(join(dataDir, 'recovery-point-offset-checkpoint'), '0\n0\n');
    await mkdir(join(dataDir, 'gone-0.0123abcd-delete'));

    const clean = await runCli(['inspect', 'verify', dataDir]);
    expect(clean.stderr).toBe('');
    expect(clean.code).toBe(0);
    // Partitions in topic, then partition number order; each reported as `verify <partition-dir>` reports it.
    const verifiedLines = clean.stdout.split('\n').filter((line) => line.startsWith('verified '));
    expect(verifiedLines.map((line) => line.split(':')[0])).toEqual(['orders-2', 'orders-10', 'payments-0'].map((name) => `verified ${join(dataDir, name)}`));
    expect(clean.stdout.match(/OK: no problems\n/g)).toHaveLength(3);
    expect(clean.stdout).toMatch(new RegExp(`OK: 3 partitions under ${dataDir}, no problems\n$`));

    const bad = segments.get('orders-10')!;
    await flipBits(bad.logPath, bad.batches[1]!.position + RECORDS_OFFSET + 2, 0x10);
    const corrupt = await runCli(['inspect', 'verify', dataDir]);
    expect(corrupt.code).toBe(1);
    expect(corrupt.stdout).toContain(`PROBLEM ${bad.logPath} position ${bad.batches[1]!.position} (base offset 3): crc-mismatch`);
    expect(corrupt.stdout).toMatch(new RegExp(`CORRUPT: 1 problem in 1 of 3 partitions under ${dataDir}\n$`));

    const json = await runCli(['inspect', 'verify', dataDir, '--json']);
    expect(json.code).toBe(1);
    const document = JSON.parse(json.stdout) as { dir: string; partitions: VerifyReport[] };
    expect(document.dir).toBe(dataDir);
    expect(document.partitions.map((report) => [report.dir, report.problems.length])).toEqual([
      [join(dataDir, 'orders-2'), 0],
      [join(dataDir, 'orders-10'), 1],
      [join(dataDir, 'payments-0'), 0],
    ]);
    // The same report as verifying that partition directory alone.
    expect(document.partitions[1]).toEqual(await verifyPartitionDir(join(dataDir, 'orders-10')));
  });

  it('(a) names file, position and base offset of a batch with one flipped byte under its CRC', async () => {
    const { dir, second } = await goodPartition();
    const bad = second.batches[1]!;
    await flipBits(second.logPath, bad.position + RECORDS_OFFSET + 5, 0xff);
    const result = await runCli(['inspect', 'verify', dir]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      new RegExp(`PROBLEM .*00000000000000000006\\.log position ${bad.position} \\(base offset 9\\): crc-mismatch: stored CRC 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\\n`),
    );
    expect(result.stdout).toMatch(/CORRUPT: 1 problem\n$/);
    const report = await verifyPartitionDir(dir);
    expect(report.problems).toEqual([{ file: second.logPath, position: bad.position, baseOffset: 9, problem: 'crc-mismatch', detail: expect.stringMatching(/^stored CRC/) as unknown }]);
  });

  it('(b) catches a flipped bit in a baseOffset field, which the CRC does not cover, as an offset-chain problem', async () => {
    const { dir, first } = await goodPartition();
    const bad = first.batches[1]!; // offsets 3..4; bit 2 of the low byte turns 3 into 7
    await flipBits(first.logPath, bad.position + BASE_OFFSET_OFFSET + 7, 0x04);
    const result = await runCli(['inspect', 'verify', dir]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(
      `PROBLEM ${first.logPath} position ${bad.position} (base offset 7): offset-chain: base offset 7 leaves a gap after offset 2 (expected 3)`,
    );
    const report = await verifyPartitionDir(dir);
    // The index entries for that batch now disagree with its header too; nothing else is reported.
    expect(problemsIn(report, '00000000000000000000.log')).toEqual([
      { file: first.logPath, position: bad.position, baseOffset: 7, problem: 'offset-chain', detail: 'base offset 7 leaves a gap after offset 2 (expected 3)' },
    ]);
    expect(problemsIn(report, '00000000000000000006.log')).toEqual([]);
    expect(problemsIn(report, '00000000000000000000.index')).toMatchObject([{ problem: 'index-entry', position: 0 }]);
  });

  it('(c) catches a flipped bit in partitionLeaderEpoch against the leader-epoch-checkpoint, and only with one', async () => {
    const { dir, second } = await goodPartition();
    const bad = second.batches[1]!; // epoch 3 -> 2
    await flipBits(second.logPath, bad.position + PARTITION_LEADER_EPOCH_OFFSET + 3, 0x01);
    const result = await runCli(['inspect', 'verify', dir]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(
      `PROBLEM ${second.logPath} position ${bad.position} (base offset 9): leader-epoch: partition leader epoch 2, but leader-epoch-checkpoint puts offset 9 in epoch 3`,
    );
    expect((await verifyPartitionDir(dir)).problems).toHaveLength(1);

    await rm(join(dir, LEADER_EPOCH_CHECKPOINT));
    const withoutCheckpoint = await verifyPartitionDir(dir);
    expect(withoutCheckpoint.leaderEpochsChecked).toBe(false);
    expect(withoutCheckpoint.problems).toEqual([]);
  });

  it('(d) reports garbage appended after the last batch at the old end of the file', async () => {
    const { dir, second } = await goodPartition();
    const end = (await stat(second.logPath)).size;
    await appendFile(second.logPath, Buffer.alloc(100, 0xee));
    const result = await runCli(['inspect', 'verify', dir]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`PROBLEM ${second.logPath} position ${end} (base offset unknown): bad-length: batchLength -286331154 is smaller than a batch header\n`);
    const report = await verifyPartitionDir(dir);
    expect(report.problems).toMatchObject([{ file: second.logPath, position: end, baseOffset: null, problem: 'bad-length' }]);
    expect(report.segments[1]).toMatchObject({ checkedBytes: end, sizeBytes: end + 100, batches: 2 });

    // Garbage too short to hold even a batch length reads as a torn tail.
    await truncate(second.logPath, end + 10);
    expect((await verifyPartitionDir(dir)).problems).toEqual([
      { file: second.logPath, position: end, baseOffset: null, problem: 'truncated', detail: '10 bytes left, a batch needs at least 61' },
    ]);
  });

  it('(e) reports an .index entry that no longer points at a batch start, and an index with a partial entry', async () => {
    const { dir, first, second } = await goodPartition();
    // Entry 0 of segment 0's index: (offset 4, position of batch 3..4). Move its position by one byte.
    await flipBits(first.indexPath, 7, 0x01);
    await appendFile(second.indexPath, Buffer.from([1, 2, 3]));
    const result = await runCli(['inspect', 'verify', dir]);
    expect(result.code).toBe(1);
    const position = first.batches[1]!.position + 1;
    expect(result.stdout).toContain(
      `PROBLEM ${first.indexPath} position 0 (base offset unknown): index-entry: entry 0 (offset 4, position ${position}) does not point at the start of a batch: it falls inside the batch at position ${first.batches[1]!.position} (offsets 3..4)`,
    );
    expect(result.stdout).toContain(`PROBLEM ${second.indexPath} position 8 (base offset unknown): index-size: 11 bytes is not a whole number of 8-byte entries (3 bytes left over)`);
    const report = await verifyPartitionDir(dir);
    expect(report.problems.map((problem) => [problem.file, problem.problem])).toEqual([
      [first.indexPath, 'index-entry'],
      [second.indexPath, 'index-size'],
    ]);
  });

  it('reports a .timeindex entry whose timestamp is below a batch it covers', async () => {
    const { dir, first } = await goodPartition();
    const bytes = await readFile(first.timeIndexPath);
    bytes.writeBigInt64BE(BigInt(T0), 0); // entry 0 covers offsets up to 4, whose max timestamp is T0 + 4000
    await writeFile(first.timeIndexPath, bytes);
    const report = await verifyPartitionDir(dir);
    const carrier = first.batches[1]!;
    expect(report.problems).toEqual([
      {
        file: first.timeIndexPath,
        position: 0,
        baseOffset: 3,
        problem: 'index-entry',
        detail: `entry 0 (timestamp ${T0}, offset 4) promises timestamps <= ${T0} up to offset 4, but the batch at position ${carrier.position} (offsets 3..4) has max timestamp ${T0 + 4000}`,
      },
    ]);

    // An entry naming an offset inside a batch rather than its last offset.
    bytes.writeBigInt64BE(BigInt(T0 + 4000), 0);
    bytes.writeInt32BE(3, 8);
    await writeFile(first.timeIndexPath, bytes);
    expect((await verifyPartitionDir(dir)).problems).toMatchObject([
      { file: first.timeIndexPath, position: 0, problem: 'index-entry', detail: `entry 0 (timestamp ${T0 + 4000}, offset 3) names an offset inside the batch at position ${carrier.position} (offsets 3..4), not its last offset` },
    ]);
  });

  it('--allow-offset-gaps accepts the gaps of a compacted log that the default rejects, but not offsets going back', async () => {
    const dir = await scratchDir();
    const segment = await writeSegment(dir, 0, [{ records: records(2, 2) }, { records: records(10, 1) }, { records: records(11, 3) }], [2, 10, 11]);
    await writeSegment(dir, 20, [{ records: records(25, 1) }], [25]);
    const strict = await runCli(['inspect', 'verify', dir]);
    expect(strict.code).toBe(1);
    expect(strict.stdout).toContain(`${segment.logPath} position 0 (base offset 2): offset-chain: first batch starts at offset 2 but the file name says the segment starts at 0`);
    expect(strict.stdout).toContain(`${join(dir, '00000000000000000020.log')} position 0 (base offset 25): offset-chain: first batch starts at offset 25 but the file name says the segment starts at 20`);
    const compacted = await runCli(['inspect', 'verify', dir, '--allow-offset-gaps']);
    expect(compacted.stdout).toContain('offset gaps allowed');
    expect(compacted.code).toBe(0);

    // A later segment overlapping an earlier one is wrong even with gaps allowed.
    await writeSegment(dir, 12, [{ records: records(12, 1) }]);
    const overlapping = await verifyPartitionDir(dir, { allowOffsetGaps: true });
    expect(overlapping.problems).toEqual([
      { file: join(dir, '00000000000000000012.log'), position: 0, baseOffset: 12, problem: 'offset-chain', detail: 'base offset 12 does not follow offset 13 of the batch before it' },
    ]);

    // Inside a segment: 2..3 then 10 leaves a gap.
    const other = await scratchDir();
    const gappy = await writeSegment(other, 0, [{ records: records(0, 2) }, { records: records(2, 2) }, { records: records(10, 1) }], [0, 2, 10]);
    expect((await verifyPartitionDir(other)).problems).toEqual([
      { file: gappy.logPath, position: gappy.batches[2]!.position, baseOffset: 10, problem: 'offset-chain', detail: 'base offset 10 leaves a gap after offset 3 (expected 4)' },
    ]);
    expect((await verifyPartitionDir(other, { allowOffsetGaps: true })).problems).toEqual([]);
  });

  it('lists at most MAX_PROBLEMS_PER_FILE problems per file and counts the rest', async () => {
    const dir = await scratchDir();
    await writeSegment(dir, 0, Array.from({ length: MAX_PROBLEMS_PER_FILE + 5 }, (_, i) => ({ records: records(i, 1), options: { partitionLeaderEpoch: 0 } })));
    await writeCheckpoint(join(dir, LEADER_EPOCH_CHECKPOINT), [[5, 0]]);
    const report = await verifyPartitionDir(dir);
    expect(report.problems).toHaveLength(MAX_PROBLEMS_PER_FILE);
    expect(report.problems.every((problem) => problem.problem === 'leader-epoch')).toBe(true);
    expect(report.problemsNotListed).toBe(5);
    expect(report.segments[0]!.problems).toBe(MAX_PROBLEMS_PER_FILE + 5);
    const result = await runCli(['inspect', 'verify', dir]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('... and 5 more problems not listed\n');
    expect(result.stdout).toContain(`CORRUPT: ${MAX_PROBLEMS_PER_FILE + 5} problems\n`);
  });

  it('streams batches larger than its read window, still catching a flipped byte in one', async () => {
    const dir = await scratchDir();
    const big = (offset: number): RecordInput[] => [{ key: null, value: Buffer.alloc(3000, offset), timestamp: T0 + offset }];
    const segment = await writeSegment(dir, 0, [{ records: big(0) }, { records: records(1, 2) }, { records: big(3) }]);
    const good = await verifyPartitionDir(dir, { readChunkBytes: 256 });
    expect(good).toMatchObject({ problems: [], batches: 3, bytes: (await stat(segment.logPath)).size });

    const bad = segment.batches[2]!;
    await flipBits(segment.logPath, bad.position + 1500, 0x10);
    const streamed = await verifyPartitionDir(dir, { readChunkBytes: 256 });
    const whole = await verifyPartitionDir(dir);
    expect(streamed.problems).toEqual([{ file: segment.logPath, position: bad.position, baseOffset: 3, problem: 'crc-mismatch', detail: expect.stringMatching(/^stored CRC/) as unknown }]);
    // The incremental CRC of the streamed path agrees with the whole-batch check.
    expect(streamed.problems).toEqual(whole.problems);
    await expect(verifyPartitionDir(dir, { readChunkBytes: 10 })).rejects.toThrow('readChunkBytes must be an integer in [61, 268435456], got 10');
  });

  it('never modifies the files it checks, even a torn one the broker would truncate', async () => {
    const { dir, second } = await goodPartition();
    await truncate(second.logPath, (await stat(second.logPath)).size - 7);
    const snapshot = async (): Promise<Array<[string, string]>> =>
      Promise.all((await readdir(dir)).sort().map(async (name): Promise<[string, string]> => [name, (await readFile(join(dir, name))).toString('base64')]));
    const before = await snapshot();
    const result = await runCli(['inspect', 'verify', dir, '--json']);
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as VerifyReport;
    expect(report.problems).toMatchObject([{ file: second.logPath, position: second.batches[1]!.position, baseOffset: 9, problem: 'truncated' }]);
    expect(await snapshot()).toEqual(before);
  });

  it('refuses a missing directory, a file, and a directory without segment files with one stderr line and exit 1', async () => {
    const dir = await scratchDir();
    const missing = await runCli(['inspect', 'verify', join(dir, 'nope')]);
    expect(missing).toEqual({ code: 1, stdout: '', stderr: `tidelog: no such directory: ${join(dir, 'nope')}\n` });
    await writeFile(join(dir, 'file.txt'), 'x');
    const file = await runCli(['inspect', 'verify', join(dir, 'file.txt')]);
    expect(file.code).toBe(1);
    expect(file.stderr).toMatch(/^tidelog: .*file\.txt is not a directory; verify takes a partition directory[^\n]*\n$/);
    const empty = await runCli(['inspect', 'verify', dir]);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toBe(`tidelog: ${dir} is not a partition directory: it holds no segment .log file (names like 00000000000000000000.log)\n`);
  });

  it('the built binary (node bin/tidelog.js) exits 1 and prints the problem for a corrupt partition', async () => {
    const entry = join(REPO_ROOT, 'dist', 'cli', 'main.js');
    if (!existsSync(entry)) throw new Error(`${entry} is missing: run \`npm run build\` first (\`npm test\` builds in its pretest step)`);
    const { dir, first } = await goodPartition();
    await flipBits(first.logPath, first.batches[0]!.position + RECORDS_OFFSET, 0x80);
    const result = await new Promise<CliResult>((resolve) => {
      execFile(process.execPath, [join(REPO_ROOT, 'bin', 'tidelog.js'), 'inspect', 'verify', dir], { cwd: REPO_ROOT }, (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout, stderr });
      });
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`PROBLEM ${first.logPath} position 0 (base offset 0): crc-mismatch`);
  });
});
