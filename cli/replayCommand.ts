// `tidelog replay <topic> (--from-offset N | --from-timestamp T) [--to-offset M] [--to-timestamp T]
//   [--partition P] [--filter-key K] [--filter-header name[=value]] [--follow]
//   [--to-topic T2 [--acks 0|1|all]] [--format value|json|kcat-like] [--json] [--use-fetch]`
//
// Reads a range of the topic (every partition, or --partition P) with the bundled client's
// replay() (client/replay.ts): from offset N, or from the first record at or after time T (records
// older than T are then left out too), up to --to-offset M (exclusive) but never past the log end
// as of the start, unless --follow, which keeps reading new records until SIGINT/SIGTERM (exit 0).
// Filters: --filter-key (exact key, UTF-8), --filter-header name or name=value, --to-timestamp
// (records before T). On tidelog the broker filters in a worker thread (ScanRecords); on other
// brokers, or with --use-fetch, records come through Fetch and are filtered here.
//
// Output: each record on stdout as `consume` prints it (--format value|json|kcat-like; --json is
// --format json), in offset order per partition. With --to-topic, records are re-published to that
// topic instead, with their keys, values, headers and timestamps (partitions by key, as any
// producer). A summary line (records read, matched, written) goes to stderr; with --json it is a
// JSON object; on a terminal, a progress line too. Exit 0 when done, 1 on a failure (e.g. a
// corrupt batch in the range), 2 on bad usage.
import type { Argv, CommandModule } from 'yargs';
import { createProducer, replay, type ConsumerRecord, type Producer, type ProducerRecord, type ReplayFilter, type ReplayOptions } from '../client/index.js';
import { CliUsageError, bootstrapServers, checkTimeout, integerFlag, parseAcks, runHandler, withConnectionOptions, writeOut, type CommandOutcome, type ConnectionArguments } from './plumbing.js';
import { ProgressLine } from './progress.js';
import { formatRecord, type RecordFormat as Format } from './recordFormat.js';
import { INT32_MAX } from '../common/limits.js';

/** Records per send() when re-publishing; sends are awaited in order, so order is kept. */
const REPUBLISH_CHUNK_RECORDS = 512;

interface ReplayArguments extends ConnectionArguments {
  topic: string;
  'from-offset': number | undefined;
  'from-timestamp': number | undefined;
  'to-offset': number | undefined;
  'to-timestamp': number | undefined;
  partition: number | undefined;
  'filter-key': string | undefined;
  'filter-header': string | undefined;
  follow: boolean | undefined;
  'to-topic': string | undefined;
  acks: string;
  format: string;
  json: boolean | undefined;
  'use-fetch': boolean | undefined;
}

export function replayCommand(outcome: CommandOutcome): CommandModule<object, ReplayArguments> {
  return {
    command: 'replay <topic>',
    describe: 'read a range of a topic (filtered) to stdout, or re-publish it to another topic',
    builder: (argv: Argv<object>): Argv<ReplayArguments> =>
      withConnectionOptions(argv.positional('topic', { type: 'string', demandOption: true, describe: 'the topic to read' }))
        .option('from-offset', { type: 'number', describe: 'start at this offset (a start below the log start begins at the log start)' })
        .option('from-timestamp', { type: 'number', describe: 'start at the first record at or after this time (ms since the epoch); older records are left out' })
        .option('to-offset', { type: 'number', describe: 'stop before this offset (default: the log end when the replay starts)' })
        .option('to-timestamp', { type: 'number', describe: 'only records before this time (ms since the epoch)' })
        .option('partition', { type: 'number', describe: 'read only this partition' })
        .option('filter-key', { type: 'string', describe: 'only records with exactly this key' })
        .option('filter-header', { type: 'string', describe: 'only records with this header: name, or name=value' })
        .option('follow', { type: 'boolean', describe: 'keep reading new records until SIGINT' })
        .option('to-topic', { type: 'string', describe: 're-publish the records to this topic (keys, headers, timestamps kept) instead of printing them' })
        .option('acks', { type: 'string', default: 'all', describe: 'with --to-topic: 0, 1 or all' })
        .option('format', { type: 'string', default: 'value', describe: 'how each record is printed: value, json or kcat-like' })
        .option('json', { type: 'boolean', describe: 'records as JSON lines (--format json) and the summary as JSON' })
        .option('use-fetch', { type: 'boolean', describe: 'read through Fetch and filter here, even where the broker offers ScanRecords' })
        .conflicts('from-offset', 'from-timestamp') as unknown as Argv<ReplayArguments>,
    handler: (args) => runHandler(outcome, 'replay', () => runReplay(args)),
  };
}

/** `name` or `name=value` (the value may itself hold '='). */
export function parseHeaderFilter(text: string): { name: string; value?: string } {
  const separator = text.indexOf('=');
  const name = separator < 0 ? text : text.slice(0, separator);
  if (name.length === 0) throw new CliUsageError(`--filter-header expects name or name=value, got ${JSON.stringify(text)}`);
  return separator < 0 ? { name } : { name, value: text.slice(separator + 1) };
}

function replayOptions(args: ReplayArguments, signal: AbortSignal): ReplayOptions {
  const fromOffset = integerFlag('from-offset', args['from-offset'], 0);
  const fromTimestamp = integerFlag('from-timestamp', args['from-timestamp'], 0);
  const toOffset = integerFlag('to-offset', args['to-offset'], 0);
  const toTimestamp = integerFlag('to-timestamp', args['to-timestamp'], 0);
  const partition = integerFlag('partition', args.partition, 0, INT32_MAX);
  if (fromOffset === undefined && fromTimestamp === undefined) throw new CliUsageError('give --from-offset N or --from-timestamp T');
  if (fromOffset !== undefined && toOffset !== undefined && toOffset < fromOffset) throw new CliUsageError(`--to-offset ${toOffset} is below --from-offset ${fromOffset}`);
  if (fromTimestamp !== undefined && toTimestamp !== undefined && toTimestamp <= fromTimestamp) throw new CliUsageError(`--to-timestamp ${toTimestamp} must be after --from-timestamp ${fromTimestamp}`);
  if (args['filter-key'] !== undefined && typeof args['filter-key'] !== 'string') throw new CliUsageError('--filter-key takes one key');
  const filter: ReplayFilter = {
    ...(args['filter-key'] !== undefined ? { key: args['filter-key'] } : {}),
    ...(args['filter-header'] !== undefined ? { header: parseHeaderFilter(args['filter-header']) } : {}),
    ...(toTimestamp !== undefined ? { toTimestampMs: toTimestamp } : {}),
  };
  const timeoutMs = checkTimeout(args['timeout-ms']);
  return {
    bootstrapServers: bootstrapServers(args['bootstrap-server']),
    topic: args.topic,
    from: fromOffset !== undefined ? { offset: fromOffset } : { timestampMs: fromTimestamp! },
    ...(toOffset !== undefined ? { toOffset } : {}),
    ...(partition !== undefined ? { partitions: [partition] } : {}),
    follow: args.follow === true,
    filter,
    scan: args['use-fetch'] === true ? 'fetch' : 'auto',
    signal,
    clientId: 'tidelog-cli-replay',
    requestTimeoutMs: timeoutMs,
  };
}

function formatOf(args: ReplayArguments): Format {
  if (args.json === true) return 'json';
  if (args.format !== 'value' && args.format !== 'json' && args.format !== 'kcat-like') throw new CliUsageError(`--format must be value, json or kcat-like, got ${JSON.stringify(args.format)}`);
  return args.format;
}

function asProducerRecord(record: ConsumerRecord): ProducerRecord {
  return { key: record.key, value: record.value, headers: record.headers.map((header) => ({ key: header.key, value: header.value })), timestamp: record.timestamp };
}

async function runReplay(args: ReplayArguments): Promise<void> {
  const stopping = new AbortController();
  const options = replayOptions(args, stopping.signal);
  const format = formatOf(args);
  const toTopic = args['to-topic'];
  if (toTopic !== undefined && toTopic.length === 0) throw new CliUsageError('--to-topic must not be empty');
  if (toTopic === args.topic && options.follow === true) throw new CliUsageError('--to-topic equal to the topic with --follow would replay its own output forever');
  const acks = parseAcks(args.acks);
  const timeoutMs = options.requestTimeoutMs!;

  const records = replay(options);
  // On a terminal (and not the one the records print to): records and bytes read, with rates.
  const progress = new ProgressLine(`replay ${args.topic}`, () => ({ records: records.stats.recordsScanned, bytes: records.stats.bytesScanned }), {
    onlyIf: toTopic !== undefined || process.stdout.isTTY !== true,
  });
  const stop = (): void => stopping.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // A closed stdout (`| head`): stop reading, exit cleanly.
  process.stdout.on('error', stop);
  let producer: Producer | null = null;
  let written = 0;
  progress.start();
  try {
    if (toTopic === undefined) {
      for await (const record of records) {
        const waiting = writeOut(formatRecord(record, format));
        if (waiting !== undefined) await waiting;
      }
    } else {
      producer = createProducer({ bootstrapServers: options.bootstrapServers, clientId: 'tidelog-cli-replay', acks, requestTimeoutMs: timeoutMs, deliveryTimeoutMs: timeoutMs, connectTimeoutMs: Math.min(timeoutMs, 10_000) });
      let chunk: ProducerRecord[] = [];
      const flushChunk = async (): Promise<void> => {
        if (chunk.length === 0) return;
        const sending = chunk;
        chunk = [];
        await producer!.send(toTopic, sending);
        written += sending.length;
      };
      for await (const record of records) {
        chunk.push(asProducerRecord(record));
        if (chunk.length >= REPUBLISH_CHUNK_RECORDS) await flushChunk();
      }
      await flushChunk();
    }
  } finally {
    progress.stop();
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
    process.stdout.removeListener('error', stop);
    await records.return();
    if (producer !== null) await producer.close().catch(() => undefined);
    const { recordsScanned, recordsMatched } = records.stats;
    const summary = { recordsRead: recordsScanned, recordsMatched, recordsWritten: toTopic === undefined ? 0 : written, ...(toTopic !== undefined ? { toTopic } : {}) };
    process.stderr.write(
      args.json === true
        ? `${JSON.stringify(summary)}\n`
        : `replay: ${recordsScanned} records read, ${recordsMatched} matched${toTopic === undefined ? '' : `, ${written} written to ${toTopic}`}\n`,
    );
  }
}
