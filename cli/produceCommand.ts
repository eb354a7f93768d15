// `tidelog produce <topic> [--file path] [--key-separator S] [--headers k=v,...] [--acks 0|1|all]
//   [--json-lines] [--on-error skip|fail]`
//
// One record per line of stdin (or --file), the value as-is (without the line break; a CR before
// it is dropped). --key-separator: the text before the first separator is the key, the rest the
// value; a line without the separator is malformed. --json-lines: each non-blank line is
// {"key"?, "value", "headers"?, "partition"?}; a string value is sent as-is, any other JSON value
// as its JSON text, null or a missing value as a null value (a tombstone); a key is a string or
// null; headers an object of string (or null) values. A malformed line is reported on stderr with
// its line number and skipped (--on-error skip, the default) or ends the command with exit 1
// before anything after it is sent (--on-error fail; lines before it are still delivered).
//
// Lines are sent in chunks, a bounded number in flight; a chunk waits at most --linger-ms for more
// lines, so a slow stream is sent as it comes. Exit 0 once every record is acknowledged (per
// --acks); a failed send (the broker gone for --timeout-ms, retries included) exits 1 at once, even
// while stdin stays open. A one-line summary goes to stderr; on a terminal, a progress line too.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Argv, CommandModule } from 'yargs';
import { createProducer, type Producer, type ProducerRecord } from '../client/index.js';
import { CliUsageError, EXIT_FAILURE, bootstrapServers, checkTimeout, messageOf, parseAcks, parsePairs, runHandler, withConnectionOptions, type CommandOutcome, type ConnectionArguments } from './plumbing.js';
import { ProgressLine } from './progress.js';
import { INT32_MAX } from '../common/limits.js';

/** Records per send() call. */
const CHUNK_RECORDS = 512;
/** Chunks sent but not yet acknowledged before reading pauses. */
const MAX_CHUNKS_IN_FLIGHT = 16;

interface ProduceArguments extends ConnectionArguments {
  topic: string;
  file: string | undefined;
  'key-separator': string | undefined;
  headers: string[] | undefined;
  acks: string;
  'json-lines': boolean | undefined;
  'on-error': string;
  'linger-ms': number;
}

/** A line that is not a record: its 1-based line number and why. */
export class MalformedLineError extends Error {
  override readonly name = 'MalformedLineError';
  constructor(readonly lineNumber: number, reason: string) {
    super(`line ${lineNumber}: ${reason}`);
  }
}

/** A --json-lines line as a record; throws MalformedLineError. */
export function parseJsonLine(line: string, lineNumber: number): ProducerRecord {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (error) {
    throw new MalformedLineError(lineNumber, `not JSON (${messageOf(error)})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new MalformedLineError(lineNumber, 'expected a JSON object {"key","value","headers","partition"}');
  const object = parsed as Record<string, unknown>;
  const record: ProducerRecord = { value: null };
  const value = object['value'];
  if (value !== undefined && value !== null) record.value = typeof value === 'string' ? value : JSON.stringify(value);
  const key = object['key'];
  if (key !== undefined && key !== null) {
    if (typeof key !== 'string') throw new MalformedLineError(lineNumber, '"key" must be a string or null');
    record.key = key;
  }
  const headers = object['headers'];
  if (headers !== undefined && headers !== null) {
    if (typeof headers !== 'object' || Array.isArray(headers)) throw new MalformedLineError(lineNumber, '"headers" must be an object of string values');
    const out: Record<string, string | null> = {};
    for (const [name, headerValue] of Object.entries(headers as Record<string, unknown>)) {
      if (headerValue !== null && typeof headerValue !== 'string') throw new MalformedLineError(lineNumber, `header ${JSON.stringify(name)} must be a string or null`);
      out[name] = headerValue;
    }
    record.headers = out;
  }
  const partition = object['partition'];
  if (partition !== undefined && partition !== null) {
    if (typeof partition !== 'number' || !Number.isInteger(partition) || partition < 0 || partition > INT32_MAX) throw new MalformedLineError(lineNumber, '"partition" must be a non-negative integer');
    record.partition = partition;
  }
  return record;
}

export function produceCommand(outcome: CommandOutcome): CommandModule<object, ProduceArguments> {
  return {
    command: 'produce <topic>',
    describe: 'send one record per line of stdin (or --file) to a topic',
    builder: (argv: Argv<object>): Argv<ProduceArguments> =>
      withConnectionOptions(argv.positional('topic', { type: 'string', demandOption: true, describe: 'the topic to write to' }))
        .option('file', { type: 'string', describe: 'read lines from this file instead of stdin' })
        .option('key-separator', { type: 'string', describe: 'the text before the first separator on a line is the key' })
        .option('headers', { type: 'string', array: true, describe: 'headers for every record, k=v,k=v; repeatable' })
        .option('acks', { type: 'string', default: 'all', describe: 'acknowledgements to wait for: 0, 1 or all' })
        .option('json-lines', { type: 'boolean', describe: 'each line is {"key","value","headers","partition"?}' })
        .option('on-error', { type: 'string', default: 'skip', describe: 'what a malformed line does: skip (report and go on) or fail (exit 1)' })
        .option('linger-ms', { type: 'number', default: 5, describe: 'how long a batch may wait for more records' })
        .conflicts('json-lines', ['key-separator', 'headers']) as unknown as Argv<ProduceArguments>,
    handler: (args) => runHandler(outcome, 'produce', () => produce(args, outcome)),
  };
}

async function produce(args: ProduceArguments, outcome: CommandOutcome): Promise<void> {
  const servers = bootstrapServers(args['bootstrap-server']);
  const timeoutMs = checkTimeout(args['timeout-ms']);
  const acks = parseAcks(args.acks);
  const separator = args['key-separator'];
  if (separator !== undefined && separator.length === 0) throw new CliUsageError('--key-separator must not be empty');
  const headers = args.headers === undefined ? undefined : parsePairs('headers', args.headers, true);
  const lingerMs = args['linger-ms'];
  if (!Number.isInteger(lingerMs) || lingerMs < 0 || lingerMs > 60_000) throw new CliUsageError(`--linger-ms must be an integer in [0, 60000], got ${String(lingerMs)}`);
  if (args['on-error'] !== 'skip' && args['on-error'] !== 'fail') throw new CliUsageError(`--on-error must be skip or fail, got ${JSON.stringify(args['on-error'])}`);
  const failOnMalformed = args['on-error'] === 'fail';

  const input = args.file === undefined ? process.stdin : createReadStream(args.file);
  // An unreadable file surfaces as an error of the stream; readline would not end on it.
  const opened = new Promise<never>((_, reject) => input.once('error', (error: Error) => reject(new Error(`--file ${args.file ?? '-'}: ${messageOf(error)}`))));
  opened.catch(() => undefined);

  const producer: Producer = createProducer({
    bootstrapServers: servers,
    clientId: 'tidelog-cli-producer',
    acks,
    lingerMs,
    requestTimeoutMs: timeoutMs,
    deliveryTimeoutMs: timeoutMs,
    connectTimeoutMs: Math.min(timeoutMs, 10_000),
  });
  let sent = 0;
  let sentBytes = 0;
  let skipped = 0;
  let failure: Error | null = null;
  // Rejected by the first failed send, so that waiting for more input ends at once (stdin may
  // stay open long after the broker went away).
  let reportSendFailure: (error: Error) => void = () => undefined;
  const sendFailed = new Promise<never>((_, reject) => {
    reportSendFailure = reject;
  });
  sendFailed.catch(() => undefined);
  const inFlight = new Set<Promise<void>>();
  // Not while a person types the records: the redraws would run over the echoed line.
  const progress = new ProgressLine(`produce ${args.topic}`, () => ({ records: sent, bytes: sentBytes }), { onlyIf: input !== process.stdin || process.stdin.isTTY !== true });
  const sendChunk = (records: ProducerRecord[], bytes: number): void => {
    const promise = producer.send(args.topic, records).then(
      () => {
        sent += records.length;
        sentBytes += bytes;
      },
      (error: unknown) => {
        failure ??= error instanceof Error ? error : new Error(String(error));
        reportSendFailure(failure);
      },
    );
    inFlight.add(promise);
    void promise.finally(() => inFlight.delete(promise));
  };

  // The chunk being filled: sent when full, or lingerMs after its first record so that a slow
  // stream (a terminal, `tail -f`) is sent as it comes rather than when 512 lines piled up.
  let chunk: ProducerRecord[] = [];
  let chunkBytes = 0;
  let lingerTimer: NodeJS.Timeout | null = null;
  const sendPending = (): void => {
    if (lingerTimer !== null) clearTimeout(lingerTimer);
    lingerTimer = null;
    if (chunk.length === 0) return;
    sendChunk(chunk, chunkBytes);
    chunk = [];
    chunkBytes = 0;
  };

  // Created once connected: lines (and the end) emitted before the loop starts would be lost.
  let lines: ReturnType<typeof createInterface> | null = null;
  let lineNumber = 0;
  let stopped = false;
  try {
    // Fail early (broker down) rather than after reading all of the input.
    await Promise.race([producer.connect(), opened]);
    progress.start();
    lines = createInterface({ input, crlfDelay: Infinity });
    const reading = (async () => {
      for await (const rawLine of lines!) {
        if (stopped) break;
        lineNumber++;
        const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
        let record: ProducerRecord;
        try {
          if (args['json-lines'] === true) {
            if (line.trim().length === 0) continue;
            record = parseJsonLine(line, lineNumber);
          } else if (separator !== undefined) {
            const at = line.indexOf(separator);
            if (at < 0) throw new MalformedLineError(lineNumber, `no key separator ${JSON.stringify(separator)}`);
            record = { key: line.slice(0, at), value: line.slice(at + separator.length) };
          } else {
            record = { value: line };
          }
        } catch (error) {
          if (!(error instanceof MalformedLineError)) throw error;
          if (failOnMalformed) throw error;
          skipped++;
          progress.print(`tidelog produce: skipped ${error.message}\n`);
          continue;
        }
        if (headers !== undefined) record.headers = headers;
        chunk.push(record);
        // Counted only for the progress line: a TTY is a person watching, not a benchmark.
        if (progress.enabled) chunkBytes += Buffer.byteLength(line);
        if (chunk.length >= CHUNK_RECORDS) sendPending();
        else lingerTimer ??= setTimeout(sendPending, lingerMs);
        while (inFlight.size >= MAX_CHUNKS_IN_FLIGHT) await Promise.race(inFlight);
        if (failure !== null) throw failure;
      }
    })();
    // Settled here, or ignored once the race below has moved on (it must never be unhandled).
    reading.catch(() => undefined);
    await Promise.race([reading, opened, sendFailed]);
    // Records read before a malformed line (--on-error fail) are sent in any case (below).
  } catch (error) {
    failure ??= error instanceof Error ? error : new Error(String(error));
    stopped = true;
    lines?.close();
    input.destroy();
  }
  if (!(failure instanceof Error && !(failure instanceof MalformedLineError))) sendPending();
  if (lingerTimer !== null) clearTimeout(lingerTimer);
  while (inFlight.size > 0) await Promise.all(inFlight);
  await producer.close().catch((error: unknown) => {
    failure ??= error instanceof Error ? error : new Error(String(error));
  });
  progress.stop();
  const summary = `${sent} record${sent === 1 ? '' : 's'} sent to ${args.topic}${skipped > 0 ? `, ${skipped} malformed line${skipped === 1 ? '' : 's'} skipped` : ''}`;
  if (failure !== null) {
    const error: Error = failure;
    process.stderr.write(`tidelog produce: ${error.message.split('\n')[0]} (${summary})\n`);
    outcome.exitCode = EXIT_FAILURE;
    return;
  }
  process.stderr.write(`tidelog produce: ${summary}\n`);
}
