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
// SIGTERM (the consumer is closed cleanly, offsets committed with --group; exit 0). A broker that
// stays unreachable for --timeout-ms (retries included) ends the run with exit 1. On a terminal,
// stderr shows a progress line (records, MB, rate, lag).
import type { Argv, CommandModule } from 'yargs';
import { KafkaConnectionError, KafkaRequestTimeoutError, createAdmin, createConsumer, type Admin, type Consumer, type TopicPartitionOffset } from '../client/index.js';
import { CliUsageError, bootstrapServers, checkTimeout, integerFlag, messageOf, runHandler, withConnectionOptions, writeOut, type CommandOutcome, type ConnectionArguments } from './plumbing.js';
import { ProgressLine } from './progress.js';
import { formatRecord, type RecordFormat as Format } from './recordFormat.js';
import { INT32_MAX, MAX_TIMER_DELAY_MS } from '../common/limits.js';

/** Output gathered before one write to stdout. */
const OUTPUT_CHUNK_CHARS = 64 * 1024;

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
  const partition = integerFlag('partition', args.partition, 0, INT32_MAX);
  const maxMessages = integerFlag('max-messages', args['max-messages'], 1);
  const idleTimeoutMs = integerFlag('idle-timeout-ms', args['idle-timeout-ms'], 1, MAX_TIMER_DELAY_MS);
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
  const admin = createAdmin({ bootstrapServers: servers, clientId: 'tidelog-cli-consumer', requestTimeoutMs: timeoutMs });
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
  let count = 0;
  let bytes = 0;
  // Records are written together, one write per OUTPUT_CHUNK_CHARS or per pause in the input
  // (setImmediate runs once the iterator has to wait), rather than one write per record.
  let output = '';
  let flushScheduled = false;
  let drained: Promise<void> | undefined;
  const flush = (): void => {
    flushScheduled = false;
    if (output.length === 0) return;
    const waiting = writeOut(output);
    output = '';
    if (waiting !== undefined) {
      drained = waiting.then(() => {
        drained = undefined;
      });
    }
  };
  const watch = new BrokerWatch(admin, args.topic, servers, timeoutMs, stop);
  // Records printed on the terminal would run into the status line: progress only when stdout
  // goes elsewhere (a file, a pipe) and stderr is a terminal.
  const progress = new ProgressLine(`consume ${args.topic}`, () => ({ records: count, bytes, lagRecords: watch.lagOf(consumer) }), { onlyIf: process.stdout.isTTY !== true });
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // A closed stdout (`| head`): stop reading, exit cleanly.
  const onStdoutError = (): void => stop();
  process.stdout.on('error', onStdoutError);
  try {
    if (args.group !== undefined) {
      consumer.subscribe([args.topic], { groupId: args.group });
    } else {
      const [description] = await admin.describeTopics([args.topic]);
      let partitions = (description?.partitions ?? []).map((p) => p.partition).sort((a, b) => a - b);
      if (partition !== undefined) {
        if (!partitions.includes(partition)) throw new CliUsageError(`--partition ${partition}: topic ${args.topic} has partitions 0..${partitions.length - 1}`);
        partitions = [partition];
      }
      const assignment: TopicPartitionOffset[] = partitions.map((p) => ({ topic: args.topic, partition: p, ...(offset !== undefined ? { offset } : {}) }));
      consumer.assign(assignment);
      if (timestamp !== undefined) await consumer.seekToTimestamp(timestamp);
    }
    watch.start();
    progress.start();
    if (!stopping) {
      armIdle();
      for await (const record of consumer.records()) {
        output += formatRecord(record, format);
        if (output.length >= OUTPUT_CHUNK_CHARS) flush();
        else if (!flushScheduled) {
          flushScheduled = true;
          setImmediate(flush);
        }
        if (drained !== undefined) await drained;
        count++;
        bytes += (record.key?.length ?? 0) + (record.value?.length ?? 0);
        armIdle();
        if (stopping || (maxMessages !== undefined && count >= maxMessages)) break;
      }
    }
  } finally {
    flush();
    if (idleTimer !== null) clearTimeout(idleTimer);
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
    progress.stop();
    watch.stop();
    await close();
    await admin.close().catch(() => undefined);
    process.stdout.removeListener('error', onStdoutError);
  }
  if (watch.failure !== null) throw watch.failure;
}

/** How often the broker is asked for the log end offsets (liveness, and lag for the progress line). */
const WATCH_INTERVAL_MS = 2_000;

/**
 * The consumer retries a broker that went away for as long as it runs (a consumer should ride out
 * a restart). The CLI must end instead: every WATCH_INTERVAL_MS this asks for the topic's log end
 * offsets, and when the admin client (which retries within --timeout-ms) still cannot reach a
 * broker, the run stops with a clear error. The answers also give the lag for the progress line.
 */
class BrokerWatch {
  failure: Error | null = null;
  private endOffsets = new Map<number, bigint>();
  private timer: NodeJS.Timeout | null = null;
  private started = false;
  private stopped = false;

  constructor(
    private readonly admin: Admin,
    private readonly topic: string,
    private readonly servers: readonly string[],
    private readonly timeoutMs: number,
    private readonly onLost: () => void,
  ) {}

  /** Asks at once (the progress line shows the lag from the start), then every WATCH_INTERVAL_MS. */
  start(): void {
    if (this.stopped || this.started) return;
    this.started = true;
    void this.probe();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Records between the consumer's positions and the last known log ends; null before any answer. */
  lagOf(consumer: Consumer): number | null {
    if (this.endOffsets.size === 0) return null;
    let lag = 0n;
    for (const { topic, partition } of consumer.assignment()) {
      const end = topic === this.topic ? this.endOffsets.get(partition) : undefined;
      const position = consumer.position(topic, partition);
      if (end === undefined || position === null) return null;
      if (end > position) lag += end - position;
    }
    return Number(lag);
  }

  private async probe(): Promise<void> {
    this.timer = null;
    try {
      const offsets = await this.admin.listOffsets(this.topic, 'latest');
      this.endOffsets = new Map(offsets.map((p) => [p.partition, p.offset]));
    } catch (error) {
      if (this.stopped) return;
      if (error instanceof KafkaConnectionError || error instanceof KafkaRequestTimeoutError) {
        // The admin client lists every failed attempt; the first says what happened.
        const cause = messageOf(error).split('\n')[0]!.split('; ')[0]!;
        this.failure = new Error(`the broker went away (${this.servers.join(',')}): still unreachable after retrying for ${this.timeoutMs} ms: ${cause}`);
        this.onLost();
        return;
      }
      // Anything else (the topic not there yet, a leader moving) is not the broker going away.
    }
    if (!this.stopped) this.timer = setTimeout(() => void this.probe(), WATCH_INTERVAL_MS);
  }
}
