// `tidelog inspect dump <file.log> [--json] [--records]` and
// `tidelog inspect verify <dir> [--json] [--allow-offset-gaps]`: read-only views of the files
// segments/ writes. The checking lives in engine/log/verification/partitionVerifier.ts and runs on worker
// threads (one task per partition directory: a data directory's partitions are checked in
// parallel); this module parses arguments and formats. Exit codes: 0 all valid, 1 anything
// corrupt or torn (or a path that is missing or of the wrong kind), 2 bad usage (yargs, through
// main.ts).
//
// Byte values (record keys, values, header values) are shown as UTF-8 when they decode as UTF-8
// without control characters, else as base64, and always say which: `utf8:"text"` / `base64:AAE=`
// in text output, {"encoding":"utf8"|"base64","data":...} in JSON. Null is `null` in both.
import { once } from 'node:events';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { CorruptCompressionError, UnsupportedCompressionError, compressionName } from '../segments/compression.js';
import {
  ATTRIBUTE_CONTROL,
  ATTRIBUTE_DELETE_HORIZON,
  ATTRIBUTE_LOG_APPEND_TIME,
  ATTRIBUTE_TRANSACTIONAL,
  LOG_OVERHEAD,
  compressionOf,
  decodeRecords,
  hex32,
  type BatchHeader,
  type DecodedRecord,
} from '../segments/recordBatch.js';
import { parseSegmentFileName } from '../segments/segmentNames.js';
import { streamLogger } from '../engine/logger.js';
import { VerifyPathError as InspectPathError, errorMessage, partitionDirectoriesIn, scanSegmentFile, type VerifyReport } from '../engine/log/verification/partitionVerifier.js';
import { WorkerPool, defaultWorkerThreads } from '../engine/workers/workerPool.js';
import { EXIT_FAILURE, type CommandOutcome } from './plumbing.js';

/** Text output shows at most this many characters of one key or value; JSON shows everything. */
const TEXT_VALUE_MAX_CHARS = 200;
/** Largest millisecond value a JS Date can show. */
const MAX_DATE_MS = 8.64e15;
/** A partition's verification may take this long (a slow disk, terabytes): far past any real run. */
const VERIFY_TASK_TIMEOUT_MS = 24 * 60 * 60 * 1000;

interface DumpArguments {
  file: string;
  json: boolean;
  records: boolean;
}

interface VerifyArguments {
  dir: string;
  json: boolean;
  'allow-offset-gaps': boolean;
}

export function inspectCommand(outcome: CommandOutcome): CommandModule<object, object> {
  return {
    command: 'inspect',
    describe: 'look inside segment files and partition directories (read-only)',
    builder: (argv: Argv<object>): Argv<object> =>
      argv
        .command(dumpCommand(outcome))
        .command(verifyCommand(outcome))
        .demandCommand(1, 'name an inspect command: dump or verify'),
    // Never runs: demandCommand sends `inspect` alone to the usage error.
    handler: () => undefined,
  };
}

function dumpCommand(outcome: CommandOutcome): CommandModule<object, DumpArguments> {
  return {
    command: 'dump <file>',
    describe: 'list every batch of one segment .log file (stops at the first torn or bad batch)',
    builder: (argv: Argv<object>): Argv<DumpArguments> =>
      argv
        .positional('file', { type: 'string', demandOption: true, describe: 'a segment file, e.g. 00000000000000000000.log' })
        .option('json', { type: 'boolean', default: false, describe: 'print one JSON document {batches, problems} instead of text' })
        .option('records', { type: 'boolean', default: false, describe: 'also print each record: offset, timestamp, key, value, headers' }),
    handler: async (args) => {
      // main.ts's fail() records a usage error (exit 2) but lets yargs call the handler anyway.
      if (typeof args.file !== 'string') return;
      await reportingPathErrors(outcome, async () => {
        const problems = await dumpSegment(args.file, { json: args.json, records: args.records });
        if (problems > 0) outcome.exitCode = EXIT_FAILURE;
      });
    },
  };
}

function verifyCommand(outcome: CommandOutcome): CommandModule<object, VerifyArguments> {
  return {
    command: 'verify <dir>',
    describe: 'check every batch, offset and index of a partition directory (or of every partition under a data directory); exit 1 if anything is corrupt',
    builder: (argv: Argv<object>): Argv<VerifyArguments> =>
      argv
        .positional('dir', { type: 'string', demandOption: true, describe: 'a partition directory, e.g. <data-dir>/orders-0, or a directory of them, e.g. <data-dir>' })
        .option('json', { type: 'boolean', default: false, describe: 'print the report as one JSON document' })
        .option('allow-offset-gaps', { type: 'boolean', default: false, describe: 'accept gaps between offsets (compacted topics; implied where the offset-gaps-allowed marker is)' }),
    handler: async (args) => {
      if (typeof args.dir !== 'string') return; // a usage error already recorded; see dump
      await reportingPathErrors(outcome, async () => {
        const partitionDirs = await partitionDirectoriesIn(args.dir);
        const reports = await verifyOnWorkers(partitionDirs, args['allow-offset-gaps']);
        if (partitionDirs.length === 1 && partitionDirs[0] === args.dir) {
          // A partition directory: the report as it always was.
          await writeOut(args.json ? JSON.stringify(reports[0], null, 2) + '\n' : formatVerifyReport(reports[0]!));
        } else {
          await writeOut(args.json ? JSON.stringify({ dir: args.dir, partitions: reports }, null, 2) + '\n' : formatVerifyReports(args.dir, reports));
        }
        if (reports.some((report) => problemCount(report) > 0)) outcome.exitCode = EXIT_FAILURE;
      });
    },
  };
}

/**
 * A missing or wrong-kind path is one line on stderr and exit 1; a closed stdout (`| head`) ends
 * the output quietly; other errors go up to main.ts.
 */
async function reportingPathErrors(outcome: CommandOutcome, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EPIPE') return;
    if (!(error instanceof InspectPathError)) throw error;
    process.stderr.write(`tidelog: ${error.message}\n`);
    outcome.exitCode = EXIT_FAILURE;
  }
}

/** Writes to stdout, waiting when the stream asks for it (big dumps piped into a slow reader). */
async function writeOut(text: string): Promise<void> {
  if (!process.stdout.write(text)) await once(process.stdout, 'drain');
}

// ---------------------------------------------------------------------------------------------
// dump

export type EncodedBytes = { encoding: 'utf8'; data: string } | { encoding: 'base64'; data: string };

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
// C0 controls except tab, newline and carriage return; DEL and the C1 controls.
const CONTROL_CHARACTERS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;

export function encodeBytes(bytes: Buffer | null): EncodedBytes | null {
  if (bytes === null) return null;
  try {
    const text = strictUtf8.decode(bytes);
    if (!CONTROL_CHARACTERS.test(text)) return { encoding: 'utf8', data: text };
  } catch {
    // not UTF-8: fall through to base64
  }
  return { encoding: 'base64', data: bytes.toString('base64') };
}

function formatBytes(bytes: Buffer | null): string {
  const encoded = encodeBytes(bytes);
  if (encoded === null) return 'null';
  const shown = encoded.data.length > TEXT_VALUE_MAX_CHARS ? encoded.data.slice(0, TEXT_VALUE_MAX_CHARS) : encoded.data;
  const value = encoded.encoding === 'utf8' ? `utf8:${JSON.stringify(shown)}` : `base64:${shown}`;
  return shown === encoded.data ? value : `${value}...(truncated, ${bytes!.length} bytes)`;
}

interface AttributeFlags {
  raw: number;
  transactional: boolean;
  control: boolean;
  logAppendTime: boolean;
  deleteHorizon: boolean;
}

function attributeFlags(attributes: number): AttributeFlags {
  return {
    raw: attributes,
    transactional: (attributes & ATTRIBUTE_TRANSACTIONAL) !== 0,
    control: (attributes & ATTRIBUTE_CONTROL) !== 0,
    logAppendTime: (attributes & ATTRIBUTE_LOG_APPEND_TIME) !== 0,
    deleteHorizon: (attributes & ATTRIBUTE_DELETE_HORIZON) !== 0,
  };
}

interface DumpedRecord {
  offset: number;
  timestamp: number;
  key: EncodedBytes | null;
  value: EncodedBytes | null;
  headers: Array<{ key: string; value: EncodedBytes | null }>;
}

interface DumpedBatch {
  position: number;
  sizeBytes: number;
  baseOffset: number;
  lastOffset: number;
  recordCount: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  codec: string;
  attributes: AttributeFlags;
  partitionLeaderEpoch: number;
  magic: number;
  crc: { status: 'ok' | 'mismatch'; stored: string; computed: string };
  /** With --records: the records, or null when they could not be decoded (see recordsNotDecoded). */
  records?: DumpedRecord[] | null;
  recordsNotDecoded?: string;
}

interface DumpProblem {
  position: number;
  baseOffset: number | null;
  problem: string;
  detail: string;
}

function dumpedBatch(position: number, size: number, header: BatchHeader, computedCrc: number): DumpedBatch {
  const codec = compressionOf(header.attributes);
  return {
    position,
    sizeBytes: size,
    baseOffset: header.baseOffset,
    lastOffset: header.baseOffset + header.lastOffsetDelta,
    recordCount: header.recordCount,
    baseTimestamp: header.baseTimestamp,
    maxTimestamp: header.maxTimestamp,
    producerId: header.producerId,
    producerEpoch: header.producerEpoch,
    baseSequence: header.baseSequence,
    codec: compressionName(codec) ?? `unknown codec ${codec}`,
    attributes: attributeFlags(header.attributes),
    partitionLeaderEpoch: header.partitionLeaderEpoch,
    magic: header.magic,
    crc: { status: computedCrc === header.crc ? 'ok' : 'mismatch', stored: hex32(header.crc), computed: hex32(computedCrc) },
  };
}

function dumpedRecord(record: DecodedRecord): DumpedRecord {
  return {
    offset: record.offset,
    timestamp: record.timestamp,
    key: encodeBytes(record.key),
    value: encodeBytes(record.value),
    headers: record.headers.map((header) => ({ key: header.key, value: encodeBytes(header.value) })),
  };
}

function formatTimestamp(ms: number): string {
  return ms >= 0 && ms <= MAX_DATE_MS ? `${ms} (${new Date(ms).toISOString()})` : String(ms);
}

function formatBatchLine(batch: DumpedBatch): string {
  const flags = (['transactional', 'control', 'logAppendTime', 'deleteHorizon'] as const).filter((flag) => batch.attributes[flag]);
  const crc = batch.crc.status === 'ok' ? `ok ${batch.crc.stored}` : `MISMATCH stored ${batch.crc.stored} computed ${batch.crc.computed}`;
  let line =
    `batch position=${batch.position} size=${batch.sizeBytes} baseOffset=${batch.baseOffset} lastOffset=${batch.lastOffset} count=${batch.recordCount}` +
    ` baseTimestamp=${formatTimestamp(batch.baseTimestamp)} maxTimestamp=${formatTimestamp(batch.maxTimestamp)}` +
    ` producerId=${batch.producerId} producerEpoch=${batch.producerEpoch} baseSequence=${batch.baseSequence}` +
    ` codec=${batch.codec} attributes=0x${batch.attributes.raw.toString(16).padStart(4, '0')} [${flags.join(',')}]` +
    ` partitionLeaderEpoch=${batch.partitionLeaderEpoch} crc=${crc}`;
  if (batch.recordsNotDecoded !== undefined) line += ` records=not-decoded (${batch.recordsNotDecoded})`;
  return line + '\n';
}

function formatRecordLine(record: DecodedRecord): string {
  const headers = record.headers.map((header) => `${JSON.stringify(header.key)}=${formatBytes(header.value)}`).join(', ');
  return `  record offset=${record.offset} timestamp=${formatTimestamp(record.timestamp)} key=${formatBytes(record.key)} value=${formatBytes(record.value)} headers=[${headers}]\n`;
}

function formatProblemLine(problem: DumpProblem): string {
  const offset = problem.baseOffset === null ? 'base offset unreadable' : `base offset ${problem.baseOffset}`;
  return `BAD BATCH position=${problem.position} (${offset}): ${problem.problem}: ${problem.detail}\n`;
}

async function requireSegmentFile(path: string): Promise<number> {
  let isFile: boolean;
  try {
    const stats = await stat(path);
    if (stats.isDirectory()) throw new InspectPathError(`${path} is a directory; dump takes one segment .log file (use \`inspect verify\` for a partition directory)`);
    isFile = stats.isFile();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new InspectPathError(`no such file: ${path}`);
    throw error;
  }
  const parsed = parseSegmentFileName(basename(path));
  if (!isFile || parsed === null || parsed.kind !== 'log') {
    throw new InspectPathError(`${path} is not a segment .log file (expected a name like 00000000000000000000.log)`);
  }
  return parsed.baseOffset;
}

/**
 * Prints every batch of a segment file, streaming (one batch in memory at a time). Returns the
 * number of problems found: a bad batch (which ends the dump) and records that failed to decode.
 */
async function dumpSegment(path: string, options: { json: boolean; records: boolean }): Promise<number> {
  const segmentBaseOffset = await requireSegmentFile(path);
  const problems: DumpProblem[] = [];
  let batches = 0;
  let bytesRead = 0;
  let sizeBytes = 0;
  if (options.json) await writeOut(`{"file":${JSON.stringify(path)},"segmentBaseOffset":${segmentBaseOffset},"batches":[`);
  else await writeOut(`segment ${path} (base offset ${segmentBaseOffset})\n`);

  const emitBatch = async (batch: DumpedBatch, records: DecodedRecord[] | null): Promise<void> => {
    if (options.json) {
      if (options.records && batch.crc.status === 'ok') batch.records = records === null ? null : records.map(dumpedRecord);
      await writeOut((batches > 0 ? ',' : '') + JSON.stringify(batch));
    } else {
      let text = formatBatchLine(batch);
      for (const record of records ?? []) text += formatRecordLine(record);
      await writeOut(text);
    }
    batches++;
  };

  for await (const item of scanSegmentFile(path)) {
    if (item.kind === 'end') {
      sizeBytes = item.fileSizeBytes;
      bytesRead = item.fileSizeBytes;
      break;
    }
    if (item.kind === 'problem') {
      sizeBytes = item.fileSizeBytes;
      bytesRead = item.position;
      // A batch whose header is whole but whose CRC fails is still shown, marked as a mismatch.
      if (item.problem === 'crc-mismatch' && item.header !== null && item.computedCrc !== null) {
        await emitBatch(dumpedBatch(item.position, item.header.batchLength + LOG_OVERHEAD, item.header, item.computedCrc), null);
      }
      const problem = { position: item.position, baseOffset: item.header?.baseOffset ?? null, problem: item.problem, detail: item.detail };
      problems.push(problem);
      if (!options.json) await writeOut(formatProblemLine(problem));
      break;
    }
    const batch = dumpedBatch(item.position, item.size, item.header, item.header.crc);
    let records: DecodedRecord[] | null = null;
    if (options.records) {
      if (item.bytes === null) {
        batch.recordsNotDecoded = `batch of ${item.size} bytes is larger than the read window; records not shown`;
      } else {
        try {
          records = decodeRecords(item.bytes, 0);
        } catch (error) {
          batch.recordsNotDecoded = errorMessage(error);
          // A compressed area that does not decompress holds the producer's bytes as sent, intact
          // on disk (the CRC passed): noted on the batch line, not a storage problem.
          if (!(error instanceof UnsupportedCompressionError) && !(error instanceof CorruptCompressionError)) {
            // CRC-valid bytes that do not decode: written that way, so a real problem, but the
            // batch boundaries are sound and the dump goes on.
            const problem = { position: item.position, baseOffset: item.header.baseOffset, problem: 'bad-records', detail: errorMessage(error) };
            problems.push(problem);
            if (!options.json) batch.recordsNotDecoded = `BAD RECORDS: ${problem.detail}`;
          }
        }
      }
    }
    await emitBatch(batch, records);
  }

  if (options.json) {
    await writeOut(`],"problems":${JSON.stringify(problems)},"batchCount":${batches},"sizeBytes":${sizeBytes},"bytesRead":${bytesRead}}\n`);
  } else {
    const ending = problems.length === 0 ? 'no problems' : `${problems.length} problem${problems.length === 1 ? '' : 's'}`;
    await writeOut(`${batches} batch${batches === 1 ? '' : 'es'}, ${bytesRead} of ${sizeBytes} bytes read; ${ending}\n`);
  }
  return problems.length;
}

// ---------------------------------------------------------------------------------------------
// verify

/** One verifySegments task per partition directory, in parallel on a pool sized for them; reports in the order given. */
async function verifyOnWorkers(partitionDirs: readonly string[], allowOffsetGaps: boolean): Promise<VerifyReport[]> {
  const pool = new WorkerPool({
    threads: Math.min(partitionDirs.length, defaultWorkerThreads()),
    maxQueue: partitionDirs.length,
    taskTimeoutMs: VERIFY_TASK_TIMEOUT_MS,
    logger: streamLogger(),
  });
  try {
    const settled = await Promise.allSettled(partitionDirs.map((dir) => pool.run('verifySegments', { dir, allowOffsetGaps }, { label: `verify ${dir}` })));
    return settled.map((outcome) => {
      if (outcome.status === 'rejected') throw outcome.reason;
      return outcome.value;
    });
  } finally {
    await pool.close();
  }
}

function problemCount(report: VerifyReport): number {
  return report.problems.length + report.problemsNotListed;
}

/** Each partition's report as for one partition, then a line for all of them. */
function formatVerifyReports(dir: string, reports: readonly VerifyReport[]): string {
  let text = '';
  for (const report of reports) text += formatVerifyReport(report) + '\n';
  const total = reports.reduce((sum, report) => sum + problemCount(report), 0);
  const corrupt = reports.filter((report) => problemCount(report) > 0).length;
  const partitions = `${reports.length} partition${reports.length === 1 ? '' : 's'}`;
  text += total === 0 ? `OK: ${partitions} under ${dir}, no problems\n` : `CORRUPT: ${total} problem${total === 1 ? '' : 's'} in ${corrupt} of ${partitions} under ${dir}\n`;
  return text;
}

function formatVerifyReport(report: VerifyReport): string {
  let text = '';
  for (const segment of report.segments) {
    const offsets = segment.firstOffset === null ? 'no batches' : `offsets ${segment.firstOffset}..${segment.lastOffset}`;
    const indexes = `index ${segment.offsetIndexEntries ?? 'missing'} / timeindex ${segment.timeIndexEntries ?? 'missing'} entries`;
    const status = segment.problems === 0 ? 'ok' : `${segment.problems} problem${segment.problems === 1 ? '' : 's'}`;
    text += `${basename(segment.file)}  ${offsets}  ${segment.batches} batches  ${segment.checkedBytes}/${segment.sizeBytes} bytes checked  ${indexes}  ${status}\n`;
  }
  for (const problem of report.problems) {
    const offset = problem.baseOffset === null ? 'base offset unknown' : `base offset ${problem.baseOffset}`;
    text += `PROBLEM ${problem.file} position ${problem.position} (${offset}): ${problem.problem}: ${problem.detail}\n`;
  }
  if (report.problemsNotListed > 0) text += `... and ${report.problemsNotListed} more problems not listed\n`;
  for (const notice of report.notices) text += `note: ${notice.file}: ${notice.detail}\n`;
  const total = report.problems.length + report.problemsNotListed;
  text +=
    `verified ${report.dir}: ${report.segmentsChecked} segments, ${report.batches} batches, ${report.bytes} bytes;` +
    ` leader epochs ${report.leaderEpochsChecked ? 'checked' : 'not checked (no usable leader-epoch-checkpoint)'};` +
    ` offset gaps ${report.allowOffsetGaps ? 'allowed' : 'not allowed'}\n`;
  text += total === 0 ? 'OK: no problems\n' : `CORRUPT: ${total} problem${total === 1 ? '' : 's'}\n`;
  return text;
}
