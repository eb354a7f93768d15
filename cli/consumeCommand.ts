// `tidelog consume <topic> [--group G] [--from-beginning] [--offset N] [--timestamp T]
//   [--partition P] [--max-messages N] [--format value|json|kcat-like] [--idle-timeout-ms N]`
//
// Without --group: every partition of the topic (or only --partition P) is assigned manually and
// read from the end (new records only), the beginning (--from-beginning), offset N (--offset) or
// the first record at or after time T in ms (--timestamp). With --group: the consumer joins the
// group and resumes from its committed offsets (a partition without one starts at the end, or at
// the beginning with --from-beginning); what was printed is committed on exit.
//
// Output per record, in offset order per partition: the value (--format value, the default; a
// null value prints an empty line), one JSON object per line (--format json: topic, partition,
// offset, timestamp, key, value, headers; key/value/header values as UTF-8 text or null), or
// `topic [partition] @ offset: key=K headers=k=v,... value` (--format kcat-like).
//
// Ends after --max-messages records, after --idle-timeout-ms with nothing new, or on SIGINT /
// SIGTERM (the consumer is closed cleanly, offsets committed with --group; exit 0).
import type { Argv, CommandModule } from 'yargs';
import { createAdmin, createConsumer, type Consumer, type ConsumerRecord, type TopicPartitionOffset } from '../client/index.js';
import type { CommandOutcome } from './main.js';
import { CliUsageError, bootstrapServers, checkTimeout, integerFlag, runHandler, withConnectionOptions, writeOut, type ConnectionArguments } from './topicsCommand.js';

type Format = 'value' | 'json' | 'kcat-like';

interface ConsumeArguments extends ConnectionArguments {
  topic: string;
  group: string | undefined;
  'from-beginning': boolean | undefined;
  offset: number | undefined;
  timestamp: number | undefined;
  partition: number | undefined;
  'max-messages': number | undefined;
  format: string;
  'idle-timeout-ms': number | undefined;
}

function text(buffer: Buffer | null): string | null {
  return buffer === null ? null : buffer.toString('utf8');
}

export function formatRecord(record: ConsumerRecord, format: Format): string {
  if (format === 'value') return `${text(record.value) ?? ''}\n`;
  if (format === 'json') {
    return `${JSON.stringify({
      topic: record.topic,
      partition: record.partition,
      offset: Number(record.offset),
      timestamp: record.timestamp,
      key: text(record.key),
      value: text(record.value),
      headers: Object.fromEntries(record.headers.map((header) => [header.key, text(header.value)])),
    })}\n`;
  }
  const headers = record.headers.map((header) => `${header.key}=${text(header.value) ?? ''}`).join(',');
  return `${record.topic} [${record.partition}] @ ${record.offset}: key=${text(record.key) ?? ''}${headers.length > 0 ? ` headers=${headers}` : ''} ${text(record.value) ?? ''}\n`;
}

export function consumeCommand(outcome: CommandOutcome): CommandModule<object, ConsumeArguments> {
  return {
    command: 'consume <topic>',
    describe: 'print the records of a topic, one per line',
    builder: (argv: Argv<object>): Argv<ConsumeArguments> =>
      withConnectionOptions(argv.positional('topic', { type: 'string', demandOption: true, describe: 'the topic to read' }))
        .option('group', { type: 'string', describe: 'join this consumer group (resume from its committed offsets, commit on exit)' })
        .option('from-beginning', { type: 'boolean', describe: 'start at the beginning (with --group: where the group has no offset)' })
        .option('offset', { type: 'number', describe: 'start at this offset (every assigned partition)' })
        .option('timestamp', { type: 'number', describe: 'start at the first record at or after this time (ms since the epoch)' })
        .option('partition', { type: 'number', describe: 'read only this partition' })
        .option('max-messages', { type: 'number', describe: 'stop after this many records' })
        .option('format', { type: 'string', default: 'value', describe: 'how each record is printed: value, json or kcat-like' })
        .option('idle-timeout-ms', { type: 'number', describe: 'stop after this long with no new record (default: run until SIGINT)' })
        .conflicts('group', ['offset', 'timestamp', 'partition'])
        .conflicts('offset', ['timestamp', 'from-beginning'])
        .conflicts('timestamp', 'from-beginning') as unknown as Argv<ConsumeArguments>,
    handler: (args) => runHandler(outcome, 'consume', () => consume(args)),
  };
}

async function consume(args: ConsumeArguments): Promise<void> {
  const servers = bootstrapServers(args['bootstrap-server']);
  const timeoutMs = checkTimeout(args['timeout-ms']);
  const offset = integerFlag('offset', args.offset, 0);
  const timestamp = integerFlag('timestamp', args.timestamp, 0);
  const partition = integerFlag('partition', args.partition, 0, 0x7fffffff);
  const maxMessages = integerFlag('max-messages', args['max-messages'], 1);
  const idleTimeoutMs = integerFlag('idle-timeout-ms', args['idle-timeout-ms'], 1, 0x7fffffff);
  if (args.format !== 'value' && args.format !== 'json' && args.format !== 'kcat-like') throw new CliUsageError(`--format must be value, json or kcat-like, got ${JSON.stringify(args.format)}`);
  const format: Format = args.format;
  if (args.group !== undefined && args.group.length === 0) throw new CliUsageError('--group must not be empty');
  if (maxMessages === 0) return;

  const consumer: Consumer = createConsumer({
    bootstrapServers: servers,
    clientId: 'tidelog-cli-consumer',
    requestTimeoutMs: timeoutMs,
    connectTimeoutMs: Math.min(timeoutMs, 10_000),
    autoOffsetReset: args['from-beginning'] === true ? 'earliest' : 'latest',
  });
  let stopping = false;
  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => (closing ??= consumer.close().catch(() => undefined));
  // close() ends the record iterator (and, with --group, commits what was printed).
  const stop = (): void => {
    stopping = true;
    void close();
  };
  // The idle bound is kept here, from the last record printed: the client's own idleTimeoutMs
  // restarts on every (possibly empty) fetch answer.
  let idleTimer: NodeJS.Timeout | null = null;
  const armIdle = (): void => {
    if (idleTimeoutMs === undefined) return;
    if (idleTimer !== null) clearTimeout(idleTimer);
    idleTimer = setTimeout(() => {
      // With --group the bound starts once the group assigned partitions (joining takes a while).
      if (consumer.groupMembership !== null && consumer.groupMembership.assignmentsReceived === 0) armIdle();
      else stop();
    }, idleTimeoutMs);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // A closed stdout (`| head`): stop reading, exit cleanly.
  const onStdoutError = (): void => stop();
  process.stdout.on('error', onStdoutError);
  try {
    if (args.group !== undefined) {
      consumer.subscribe([args.topic], { groupId: args.group });
    } else {
      const admin = createAdmin({ bootstrapServers: servers, clientId: 'tidelog-cli-consumer', requestTimeoutMs: timeoutMs });
      let partitions: number[];
      try {
        const [description] = await admin.describeTopics([args.topic]);
        partitions = (description?.partitions ?? []).map((p) => p.partition).sort((a, b) => a - b);
      } finally {
        await admin.close().catch(() => undefined);
      }
      if (partition !== undefined) {
        if (!partitions.includes(partition)) throw new CliUsageError(`--partition ${partition}: topic ${args.topic} has partitions 0..${partitions.length - 1}`);
        partitions = [partition];
      }
      const assignment: TopicPartitionOffset[] = partitions.map((p) => ({ topic: args.topic, partition: p, ...(offset !== undefined ? { offset } : {}) }));
      consumer.assign(assignment);
      if (timestamp !== undefined) await consumer.seekToTimestamp(timestamp);
    }
    let count = 0;
    if (!stopping) {
      armIdle();
      for await (const record of consumer.records()) {
        const waiting = writeOut(formatRecord(record, format));
        if (waiting !== undefined) await waiting;
        count++;
        armIdle();
        if (stopping || (maxMessages !== undefined && count >= maxMessages)) break;
      }
    }
  } finally {
    if (idleTimer !== null) clearTimeout(idleTimer);
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
    await close();
    process.stdout.removeListener('error', onStdoutError);
  }
}
