// End-to-end test support: a tidelog broker as a child process (`node bin/tidelog.js broker start`
// from the compiled dist/), kcat runs with a time bound, kafkajs clients, and a small raw Kafka
// client that shows exactly what the broker serves (Fetch, ListOffsets, Metadata).
//
// Every wait here is bounded and waits on an event (a log line, an exit, a response), never on a
// fixed delay. Brokers and their temporary directories are owned by the BrokerProcess that made
// them: cleanup() kills the child and removes the directory; as a last resort a process 'exit'
// hook kills whatever is still running and removes what is left, so a failed test leaves nothing.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FrameReader, writeFrame } from '../../protocol/frame.js';
import { encodeApiVersionsRequest } from '../../protocol/generated/apiVersionsRequest.js';
import { decodeApiVersionsResponse, type ApiVersionsResponse } from '../../protocol/generated/apiVersionsResponse.js';
import { encodeFetchRequest } from '../../protocol/generated/fetchRequest.js';
import { decodeFetchResponse, type FetchResponsePartitionData } from '../../protocol/generated/fetchResponse.js';
import { encodeListOffsetsRequest } from '../../protocol/generated/listOffsetsRequest.js';
import { decodeListOffsetsResponse, type ListOffsetsResponsePartitionResponse } from '../../protocol/generated/listOffsetsResponse.js';
import { encodeMetadataRequest } from '../../protocol/generated/metadataRequest.js';
import { decodeMetadataResponse, type MetadataResponse } from '../../protocol/generated/metadataResponse.js';
import { readResponseHeader, responseHeaderVersion, writeRequestHeader } from '../../protocol/headers.js';
import { ByteReader, ByteWriter } from '../../protocol/wire.js';
import { checkBatch, decodeRecords, type BatchHeader, type DecodedRecord } from '../../segments/recordBatch.js';
import { WaitTimeoutError, waitFor } from './waitFor.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const TIDELOG_BIN = join(REPO_ROOT, 'bin', 'tidelog.js');

/** How long a broker may take to log "broker started" (log recovery included). */
export const BROKER_START_TIMEOUT_MS = 20_000;
/** How long a SIGTERM'd broker may take to exit. */
export const BROKER_STOP_TIMEOUT_MS = 20_000;
/** How long a SIGKILL'd broker may take to be reaped. */
export const BROKER_KILL_TIMEOUT_MS = 10_000;
export const DEFAULT_KCAT_TIMEOUT_MS = 30_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** Lines of stderr shown in errors about a broker. */
const STDERR_TAIL_LINES = 40;
/** Upper bound on what one child process may print before the helper stops collecting it. */
const MAX_CAPTURED_OUTPUT_BYTES = 256 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Bounded waiting

export { WaitTimeoutError };

/**
 * Resolves with `promise`, or rejects after timeoutMs naming what was awaited (`what` may be a
 * function, called at the deadline, to report the state things were left in).
 */
export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string | (() => string)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new WaitTimeoutError(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Re-evaluates `condition` every millisecond (a timer, so I/O can progress) until it holds;
 * rejects after timeoutMs. For in-process conditions no event announces (the wall clock, a
 * client's assignment). The shorthand of waitFor (./waitFor.ts), which owns the polling.
 */
export async function waitUntil(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  await waitFor(condition, { timeoutMs, what, intervalMs: 1 });
}

// ---------------------------------------------------------------------------------------------
// Last-resort cleanup at process exit (synchronous: only kill and rmSync are possible there)

const liveChildren = new Set<ChildProcess>();
const liveDirectories = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of liveChildren) child.kill('SIGKILL');
    for (const dir of liveDirectories) rmSync(dir, { recursive: true, force: true });
  });
}

// ---------------------------------------------------------------------------------------------
// The broker process

export interface BrokerStartOptions {
  /** Broker configs by Kafka name, each passed as `--config key=value`. */
  configs?: Readonly<Record<string, string>>;
  startTimeoutMs?: number;
  /**
   * The broker's open-files limit, soft and hard (`prlimit --nofile=N:N`, util-linux); unset,
   * it inherits ours. Node needs about 150 descriptors of its own to load the CLI's modules.
   */
  openFilesLimit?: number;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const STARTED_LINE = /\bINFO broker started .*\blistener="([^"]+):(\d+)"/;

export class BrokerProcess {
  /** Every stderr line of every run of this broker, in order. */
  readonly lines: string[] = [];
  readonly dataDir: string;
  private child: ChildProcess | null = null;
  private exit: Promise<ExitStatus> | null = null;
  private currentPort = 0;
  private runFirstLine = 0;
  private readonly lineListeners = new Set<(line: string, index: number) => void>();
  private removed = false;

  private constructor(
    /** The temporary directory that holds the data directory; removed by cleanup(). */
    readonly root: string,
    private readonly options: BrokerStartOptions,
  ) {
    this.dataDir = join(root, 'data');
  }

  /** Starts a broker on a free port (port 0) in a new temporary data directory. */
  static async start(options: BrokerStartOptions = {}): Promise<BrokerProcess> {
    installExitHook();
    const root = await mkdtemp(join(tmpdir(), 'tidelog-e2e-'));
    liveDirectories.add(root);
    const broker = new BrokerProcess(root, options);
    try {
      await broker.launch();
    } catch (error) {
      await broker.cleanup();
      throw error;
    }
    return broker;
  }

  get port(): number {
    if (this.child === null) throw new Error('the broker is not running');
    return this.currentPort;
  }

  /** `127.0.0.1:<port>`, for kcat -b and kafkajs brokers. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get pid(): number {
    const pid = this.child?.pid;
    if (pid === undefined) throw new Error('the broker is not running');
    return pid;
  }

  get running(): boolean {
    return this.child !== null;
  }

  /**
   * True while the child runs. Asks /proc rather than waiting for Node's 'exit' event, which
   * arrives a little later: a process that died but was not yet reaped (a zombie) is not alive.
   */
  isAlive(): boolean {
    if (this.child === null || this.child.exitCode !== null || this.child.signalCode !== null) return false;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
    } catch {
      return false;
    }
    // Fields: pid (comm) state ...; comm may hold spaces or parentheses, so read after the last ')'.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  }

  /** Restarts the broker if it is not running (e.g. a test crashed it), after reaping the old one. */
  async ensureRunning(): Promise<void> {
    if (this.isAlive()) return;
    if (this.child !== null) await withTimeout(this.exit!, BROKER_KILL_TIMEOUT_MS, 'the dead broker to be reaped');
    await this.restart();
  }

  /** The stderr lines of the current (or last) run only. */
  runLines(): string[] {
    return this.lines.slice(this.runFirstLine);
  }

  /** Index of the next line to arrive; pass it to waitForLine to look only at later lines. */
  get lineCount(): number {
    return this.lines.length;
  }

  /** The first line at index >= fromIndex matching `pattern`, waiting for it up to timeoutMs. */
  waitForLine(pattern: RegExp | ((line: string) => boolean), timeoutMs = 10_000, fromIndex = this.runFirstLine): Promise<string> {
    const matches = typeof pattern === 'function' ? pattern : (line: string) => pattern.test(line);
    for (let i = fromIndex; i < this.lines.length; i++) if (matches(this.lines[i]!)) return Promise.resolve(this.lines[i]!);
    let listener: ((line: string, index: number) => void) | undefined;
    const found = new Promise<string>((resolve) => {
      listener = (line, index) => {
        if (index >= fromIndex && matches(line)) resolve(line);
      };
      this.lineListeners.add(listener);
    });
    return withTimeout(found, timeoutMs, () => `a broker log line matching ${String(pattern)}\n${this.stderrTail()}`).finally(() => {
      if (listener !== undefined) this.lineListeners.delete(listener);
    });
  }

  /** VmRSS of the broker process, in bytes (from /proc/<pid>/status). */
  async rssBytes(): Promise<number> {
    return this.statusBytes('VmRSS');
  }

  /** The most resident memory the process has had so far (the kernel's high-water mark, VmHWM). */
  async peakRssBytes(): Promise<number> {
    return this.statusBytes('VmHWM');
  }

  private async statusBytes(field: 'VmRSS' | 'VmHWM'): Promise<number> {
    const status = await readFile(`/proc/${this.pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB$`, 'm').exec(status);
    if (match === null) throw new Error(`no ${field} in /proc/${this.pid}/status`);
    return Number(match[1]) * 1024;
  }

  /** SIGTERM, then waits for the exit; throws unless the broker exited with code 0. */
  async stop(timeoutMs = BROKER_STOP_TIMEOUT_MS): Promise<void> {
    const child = this.requireChild();
    child.kill('SIGTERM');
    let status: ExitStatus;
    try {
      status = await withTimeout(this.exit!, timeoutMs, 'the broker to exit after SIGTERM');
    } catch (error) {
      await this.kill();
      throw error;
    }
    if (status.code !== 0) throw new Error(`the broker exited with ${describeExit(status)} after SIGTERM, expected code 0\n${this.stderrTail()}`);
  }

  /**
   * Waits for the current (or last) run to exit by itself (e.g. a broker that kills itself at a
   * crash point); fails after timeoutMs naming `what` and showing the stderr tail.
   */
  async waitForExit(timeoutMs: number, what = 'the broker to exit'): Promise<ExitStatus> {
    if (this.exit === null) throw new Error('the broker was never started');
    return withTimeout(this.exit, timeoutMs, () => `${what}\n${this.stderrTail()}`);
  }

  /** SIGKILL (no shutdown at all), then waits until the process is reaped. */
  async kill(timeoutMs = BROKER_KILL_TIMEOUT_MS): Promise<ExitStatus> {
    const child = this.requireChild();
    child.kill('SIGKILL');
    return withTimeout(this.exit!, timeoutMs, 'the broker to die after SIGKILL');
  }

  /** Starts the broker again on the same data directory (and configs), on a new free port. */
  async restart(): Promise<void> {
    if (this.child !== null) throw new Error('restart() needs a stopped or killed broker');
    await this.launch();
  }

  /** Kills the broker if it runs and removes the temporary directory. Idempotent. */
  async cleanup(): Promise<void> {
    if (this.child !== null) await this.kill().catch(() => undefined);
    if (this.removed) return;
    this.removed = true;
    await rm(this.root, { recursive: true, force: true });
    liveDirectories.delete(this.root);
  }

  stderrTail(lines = STDERR_TAIL_LINES): string {
    return `broker stderr (last ${lines} lines):\n${this.lines.slice(-lines).join('\n')}`;
  }

  private requireChild(): ChildProcess {
    if (this.child === null) throw new Error('the broker is not running');
    return this.child;
  }

  private async launch(): Promise<void> {
    const args = [TIDELOG_BIN, 'broker', 'start', '--host', '127.0.0.1', '--port', '0', '--data-dir', this.dataDir];
    for (const [key, value] of Object.entries(this.options.configs ?? {})) args.push('--config', `${key}=${value}`);
    this.runFirstLine = this.lines.length;
    const limit = this.options.openFilesLimit;
    // prlimit execs the command, so the child's pid is the broker's.
    const child =
      limit === undefined
        ? spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn('prlimit', [`--nofile=${limit}:${limit}`, '--', process.execPath, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    liveChildren.add(child);
    this.exit = new Promise<ExitStatus>((resolve) => {
      child.once('exit', (code, signal) => {
        liveChildren.delete(child);
        if (this.child === child) this.child = null;
        resolve({ code, signal });
      });
    });
    // A spawn failure ('error' without 'exit') would otherwise leave the start waiting.
    child.once('error', (error) => this.pushLine(`spawn error: ${error.message}`));
    this.collectLines(child.stderr!);
    this.collectLines(child.stdout!);

    const firstLine = this.runFirstLine;
    const started = this.waitForLine(STARTED_LINE, this.options.startTimeoutMs ?? BROKER_START_TIMEOUT_MS, firstLine);
    const exitedEarly = this.exit.then((status) => {
      throw new Error(`the broker exited (${describeExit(status)}) before it started\n${this.stderrTail()}`);
    });
    try {
      const line = await Promise.race([started, exitedEarly]);
      this.currentPort = Number(STARTED_LINE.exec(line)![2]);
    } catch (error) {
      if (this.child === child) await this.kill().catch(() => undefined);
      throw error;
    } finally {
      exitedEarly.catch(() => undefined);
      started.catch(() => undefined);
    }
  }

  private collectLines(stream: NodeJS.ReadableStream): void {
    let pending = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      pending += chunk;
      let newline = pending.indexOf('\n');
      while (newline >= 0) {
        this.pushLine(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
        newline = pending.indexOf('\n');
      }
    });
    stream.on('end', () => {
      if (pending.length > 0) this.pushLine(pending);
      pending = '';
    });
  }

  private pushLine(line: string): void {
    const index = this.lines.push(line) - 1;
    for (const listener of [...this.lineListeners]) listener(line, index);
  }
}

function describeExit(status: ExitStatus): string {
  return status.signal !== null ? `signal ${status.signal}` : `code ${status.code}`;
}

// ---------------------------------------------------------------------------------------------
// Child processes with a bound: kcat, the tidelog CLI

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  /** The bound passed and the process was killed. */
  timedOut: boolean;
}

export interface RunOptions {
  /** Written to stdin, which is then closed (stdin is closed at once without it). */
  input?: string | Buffer;
  timeoutMs?: number;
  cwd?: string;
}

/** Runs a command, collecting stdout and stderr; SIGKILLs it when timeoutMs passes. */
export function runProcess(command: string, args: readonly string[], options: RunOptions = {}): Promise<ProcessResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_KCAT_TIMEOUT_MS;
  return new Promise<ProcessResult>((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd ?? REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    liveChildren.add(child);
    installExitHook();
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let captured = 0;
    let timedOut = false;
    const capture = (into: Buffer[]) => (chunk: Buffer) => {
      captured += chunk.length;
      if (captured <= MAX_CAPTURED_OUTPUT_BYTES) into.push(chunk);
    };
    child.stdout.on('data', capture(stdout));
    child.stderr.on('data', capture(stderr));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      liveChildren.delete(child);
      reject(error);
    });
    // 'close': the process exited and its output streams are drained.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      liveChildren.delete(child);
      resolve({ code, signal, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString('utf8'), timedOut });
    });
    // A process that exits without reading its input makes stdin fail with EPIPE: not our concern.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** Runs kcat with `-b <broker>` first. */
export function runKcat(broker: BrokerProcess | string, args: readonly string[], options: RunOptions = {}): Promise<ProcessResult> {
  const address = typeof broker === 'string' ? broker : broker.address;
  return runProcess('kcat', ['-b', address, ...args], options);
}

/** Throws (with the output) unless the process exited 0 within its bound. */
export function expectSuccess(result: ProcessResult, what: string): ProcessResult {
  if (result.timedOut || result.code !== 0) {
    const how = result.timedOut ? 'timed out' : `exited with ${describeExit(result)}`;
    throw new Error(`${what} ${how}\nstderr:\n${result.stderr.slice(-4000)}\nstdout (tail):\n${result.stdout.toString('utf8').slice(-2000)}`);
  }
  return result;
}

/** Runs kcat and requires exit code 0 within the bound. */
export async function kcat(broker: BrokerProcess | string, args: readonly string[], options: RunOptions = {}): Promise<ProcessResult> {
  return expectSuccess(await runKcat(broker, args, options), `kcat ${args.join(' ')}`);
}

/** Runs `node bin/tidelog.js <args>` (the compiled CLI). */
export function runTidelog(args: readonly string[], options: RunOptions = {}): Promise<ProcessResult> {
  return runProcess(process.execPath, [TIDELOG_BIN, ...args], options);
}

// ---------------------------------------------------------------------------------------------
// kafkajs (CommonJS: loaded through createRequire)

export type KafkaJs = typeof import('kafkajs');
export const kafkajs: KafkaJs = createRequire(import.meta.url)('kafkajs') as KafkaJs;

/** A kafkajs client for the broker, silent, with few retries so failures surface quickly. */
export function kafkaFor(broker: BrokerProcess, options: { clientId?: string; retries?: number; requestTimeoutMs?: number } = {}): InstanceType<KafkaJs['Kafka']> {
  return new kafkajs.Kafka({
    clientId: options.clientId ?? 'tidelog-e2e',
    brokers: [broker.address],
    logLevel: kafkajs.logLevel.NOTHING,
    connectionTimeout: 5_000,
    requestTimeout: options.requestTimeoutMs ?? 10_000,
    retry: { retries: options.retries ?? 3, initialRetryTime: 50, maxRetryTime: 1_000 },
  });
}

/** Creates a topic through kafkajs's admin (a client nobody here wrote) and waits for its leaders. */
export async function createTopic(broker: BrokerProcess, topic: string, numPartitions = 1): Promise<void> {
  const admin = kafkaFor(broker).admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// A raw Kafka client: frames from the generated encoders, responses through the generated decoders

interface PendingRequest {
  apiKey: number;
  apiVersion: number;
  resolve: (frame: { reader: ByteReader }) => void;
  reject: (error: Error) => void;
}

export interface FetchOptions {
  maxBytes?: number;
  partitionMaxBytes?: number;
  maxWaitMs?: number;
  minBytes?: number;
  isolationLevel?: number;
  version?: number;
}

export interface FetchedBatch {
  header: BatchHeader;
  /** The whole batch as served (a copy). */
  bytes: Buffer;
}

export class RawKafkaClient {
  private readonly frames = new FrameReader();
  private readonly pending = new Map<number, PendingRequest>();
  private nextCorrelationId = 1;
  private closedError: Error | null = null;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => this.failAll(error));
    socket.on('close', () => this.failAll(new Error('connection closed by the broker')));
  }

  static async connect(port: number, host = '127.0.0.1', timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS): Promise<RawKafkaClient> {
    const socket = connect({ host, port, noDelay: true });
    try {
      await withTimeout(
        new Promise<void>((resolve, reject) => {
          socket.once('connect', resolve);
          socket.once('error', reject);
        }),
        timeoutMs,
        `a TCP connection to ${host}:${port}`,
      );
    } catch (error) {
      socket.destroy();
      throw error;
    }
    return new RawKafkaClient(socket);
  }

  /** Sends one request and decodes its response with the generated decoder. */
  async request<Response>(
    apiKey: number,
    apiVersion: number,
    encodeBody: (writer: ByteWriter, version: number) => void,
    decodeBody: (reader: ByteReader, version: number) => Response,
    timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS,
  ): Promise<Response> {
    if (this.closedError !== null) throw this.closedError;
    const correlationId = this.nextCorrelationId++;
    const writer = new ByteWriter();
    writeFrame(writer, (frame) => {
      writeRequestHeader(frame, { apiKey, apiVersion, correlationId, clientId: 'tidelog-e2e-raw' });
      encodeBody(frame, apiVersion);
    });
    const answered = new Promise<{ reader: ByteReader }>((resolve, reject) => this.pending.set(correlationId, { apiKey, apiVersion, resolve, reject }));
    this.socket.write(writer.toBuffer());
    try {
      const { reader } = await withTimeout(answered, timeoutMs, `the response to API ${apiKey} v${apiVersion} (correlation id ${correlationId})`);
      const response = decodeBody(reader, apiVersion);
      reader.expectEnd(`API ${apiKey} v${apiVersion} response`);
      return response;
    } finally {
      this.pending.delete(correlationId);
    }
  }

  apiVersions(version = 2): Promise<ApiVersionsResponse> {
    return this.request(18, version, (writer, v) => encodeApiVersionsRequest(writer, v, { clientSoftwareName: 'tidelog-e2e', clientSoftwareVersion: '0' }), decodeApiVersionsResponse);
  }

  metadata(topics: readonly string[] | null, version = 4): Promise<MetadataResponse> {
    return this.request(
      3,
      version,
      (writer, v) => encodeMetadataRequest(writer, v, { topics: topics === null ? null : topics.map((name) => ({ name })), allowAutoTopicCreation: false }),
      decodeMetadataResponse,
    );
  }

  /** ListOffsets for one partition (timestamp -1 latest, -2 earliest, else a time in ms). */
  async listOffsets(topic: string, partition: number, timestamp: bigint, version = 2): Promise<ListOffsetsResponsePartitionResponse> {
    const response = await this.request(
      2,
      version,
      (writer, v) => encodeListOffsetsRequest(writer, v, { replicaId: -1, isolationLevel: 0, topics: [{ name: topic, partitions: [{ partitionIndex: partition, timestamp }] }] }),
      decodeListOffsetsResponse,
    );
    const answer = response.topics.find((t) => t.name === topic)?.partitions.find((p) => p.partitionIndex === partition);
    if (answer === undefined) throw new Error(`ListOffsets answered without ${topic}-${partition}`);
    return answer;
  }

  /** One Fetch of one partition; returns its partition data (errors are returned, not thrown). */
  async fetch(topic: string, partition: number, offset: bigint, options: FetchOptions = {}): Promise<FetchResponsePartitionData> {
    const response = await this.request(
      1,
      options.version ?? 11,
      (writer, v) =>
        encodeFetchRequest(writer, v, {
          replicaId: -1,
          maxWaitMs: options.maxWaitMs ?? 0,
          minBytes: options.minBytes ?? 0,
          maxBytes: options.maxBytes ?? 8 * 1024 * 1024,
          isolationLevel: options.isolationLevel ?? 0,
          sessionId: 0,
          sessionEpoch: -1,
          topics: [{ topic, partitions: [{ partition, currentLeaderEpoch: -1, fetchOffset: offset, logStartOffset: -1n, partitionMaxBytes: options.partitionMaxBytes ?? 4 * 1024 * 1024 }] }],
          forgottenTopicsData: [],
          rackId: '',
        }),
      decodeFetchResponse,
    );
    if ((response.errorCode ?? 0) !== 0) throw new Error(`Fetch failed with top-level error ${response.errorCode}`);
    const answer = response.responses.find((t) => t.topic === topic)?.partitions.find((p) => p.partitionIndex === partition);
    if (answer === undefined) throw new Error(`Fetch answered without ${topic}-${partition}`);
    return answer;
  }

  /**
   * Every batch from `fromOffset` up to the high watermark, as served: whole batches only (a
   * truncated last batch in a response is fetched again from its start). Each batch must pass
   * checkBatch (lengths, magic, CRC); a bad one is an error here.
   */
  async fetchAllBatches(topic: string, partition: number, fromOffset = 0, options: FetchOptions = {}): Promise<{ batches: FetchedBatch[]; highWatermark: number; logStartOffset: number }> {
    const batches: FetchedBatch[] = [];
    let offset = fromOffset;
    let highWatermark = -1;
    let logStartOffset = -1;
    for (let round = 0; round < 100_000; round++) {
      const data = await this.fetch(topic, partition, BigInt(offset), options);
      if (data.errorCode !== 0) throw new Error(`Fetch ${topic}-${partition} at ${offset}: error ${data.errorCode}`);
      highWatermark = Number(data.highWatermark);
      logStartOffset = Number(data.logStartOffset ?? -1n);
      if (offset >= highWatermark) return { batches, highWatermark, logStartOffset };
      const records = data.records ?? Buffer.alloc(0);
      let position = 0;
      let progressed = false;
      while (position < records.length) {
        const check = checkBatch(records, position, records.length, { maxBatchBytes: 0x7fffffff });
        if (!check.ok) {
          if (check.problem === 'truncated') break; // a partial batch at the end of a response (KIP-74 allows it)
          throw new Error(`Fetch ${topic}-${partition} at ${offset}: bad batch at byte ${position}: ${check.problem} (${check.detail})`);
        }
        const lastOffset = check.header.baseOffset + check.header.lastOffsetDelta;
        if (lastOffset >= offset) {
          batches.push({ header: check.header, bytes: Buffer.from(records.subarray(position, position + check.size)) });
          offset = lastOffset + 1;
          progressed = true;
        }
        position += check.size;
      }
      if (!progressed) throw new Error(`Fetch ${topic}-${partition} at ${offset} (high watermark ${highWatermark}) returned no whole batch`);
    }
    throw new Error(`Fetch ${topic}-${partition}: too many rounds`);
  }

  /** Every record from `fromOffset` to the high watermark, decoded (gzip and uncompressed batches). */
  async fetchAllRecords(topic: string, partition: number, fromOffset = 0): Promise<DecodedRecord[]> {
    const { batches } = await this.fetchAllBatches(topic, partition, fromOffset);
    return recordsOf(batches).filter((record) => record.offset >= fromOffset);
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.frames.push(chunk);
    for (;;) {
      let frame: Buffer | undefined;
      try {
        frame = this.frames.next();
      } catch (error) {
        this.failAll(error as Error);
        this.socket.destroy();
        return;
      }
      if (frame === undefined) return;
      const correlationId = frame.readInt32BE(0);
      const request = this.pending.get(correlationId);
      if (request === undefined) {
        this.failAll(new Error(`a response with unknown correlation id ${correlationId}`));
        this.socket.destroy();
        return;
      }
      const reader = new ByteReader(frame);
      readResponseHeader(reader, responseHeaderVersion(request.apiKey, request.apiVersion));
      request.resolve({ reader });
    }
  }

  private failAll(error: Error): void {
    this.closedError ??= error;
    for (const request of this.pending.values()) request.reject(error);
    this.pending.clear();
  }
}

/** Decodes the records of every batch (throws for snappy/lz4/zstd, which segments/ cannot decode). */
export function recordsOf(batches: readonly FetchedBatch[]): DecodedRecord[] {
  return batches.flatMap((batch) => decodeRecords(batch.bytes));
}

/** Opens a raw client, runs `use`, and closes it. */
export async function withRawClient<T>(broker: BrokerProcess, use: (client: RawKafkaClient) => Promise<T>): Promise<T> {
  const client = await RawKafkaClient.connect(broker.port);
  try {
    return await use(client);
  } finally {
    client.close();
  }
}
