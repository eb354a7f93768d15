// One TCP connection to one broker: the only owner of its socket (it opens it, it closes it).
//
// On connect: ApiVersions, then per API the version min(our max, broker max), where "our" range is
// the generated schema's, narrowed by CLIENT_MIN_VERSIONS (e.g. Produce needs v3+ for record batch
// v2). An API in `requiredApis` that the broker lacks, or serves only outside our range, refuses
// the connection with a KafkaUnsupportedApiError naming it.
//
// Requests are pipelined with correlation ids; at most maxInFlightRequests wait for an answer
// (more callers queue for a slot, FIFO). Every request has a timeout; on timeout, a bad frame or
// a socket error, the request (or every pending one) rejects with a typed error. Each request is
// encoded into a ByteWriter from a small pool; its chunks (record batches passed through
// uncopied) go to the socket in one corked write, and the writer returns to the pool in the
// write callback, when the socket no longer needs its bytes.
//
// Reading: the socket reads into buffers we hand it (net's `onread`), so a big response (an 8 MiB
// Fetch) is read by the kernel straight into its own frame buffer: no 64 KiB chunk per read and
// no copy to join the chunks. Small frames are copied out of a reused read buffer.
import { connect, type Socket } from 'node:net';
import { ErrorCode } from '../protocol/errors.js';
import { DEFAULT_MAX_FRAME_BYTES, FRAME_SIZE_BYTES, beginFrame, endFrame } from '../protocol/frame.js';
import { ApiKey, apiSchema } from '../protocol/generated/apiSchemas.js';
import { encodeApiVersionsRequest } from '../protocol/generated/apiVersionsRequest.js';
import { decodeApiVersionsResponse, type ApiVersionsResponse } from '../protocol/generated/apiVersionsResponse.js';
import { readResponseHeader, responseHeaderVersion, writeRequestHeader } from '../protocol/headers.js';
import { ByteReader, ByteWriter } from '../protocol/wire.js';
import { KafkaClosedError, KafkaConfigError, KafkaConnectionError, KafkaProtocolError, KafkaRequestTimeoutError, KafkaUnsupportedApiError } from './errors.js';
import { INT32_MAX, MAX_TIMER_DELAY_MS } from '../common/limits.js';

/** API names to keys (the generated table), re-exported for the client's callers. */
export { ApiKey };

/** Lowest version the client will use, where older ones lack something we rely on. */
export const CLIENT_MIN_VERSIONS: Readonly<Record<number, number>> = {
  [ApiKey.Produce]: 3, // record batch v2
  [ApiKey.Fetch]: 4, // record batch v2
  [ApiKey.Metadata]: 1, // null topics = all; leader per partition
};

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_IN_FLIGHT_REQUESTS = 16;
/** Writers kept for reuse; more concurrent writes allocate writers that are then dropped. */
const WRITER_POOL_SIZE = 32;
const MAX_IN_FLIGHT_LIMIT = 1024;
const CLOSE_TIMEOUT_MS = 5_000;
/** The reused buffer socket reads go to between frames and for small frames. */
const READ_BUFFER_BYTES = 64 * 1024;

export interface ConnectionOptions {
  host: string;
  port: number;
  clientId?: string;
  connectTimeoutMs?: number;
  /** Default per-request timeout. */
  requestTimeoutMs?: number;
  maxInFlightRequests?: number;
  maxFrameBytes?: number;
  /** API keys the connection refuses to work without (ApiVersions and Metadata always). */
  requiredApis?: readonly number[];
}

export interface RequestOptions {
  timeoutMs?: number;
  /** false for Produce with acks=0: resolves (with undefined) once the bytes are written. */
  expectResponse?: boolean;
}

export type BodyEncoder = (writer: ByteWriter, version: number) => void;
export type BodyDecoder<T> = (reader: ByteReader, version: number) => T;

interface Pending {
  correlationId: number;
  apiKey: number;
  apiVersion: number;
  decode: BodyDecoder<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout | null;
}

export interface NegotiatedApi {
  apiKey: number;
  version: number;
}

export class BrokerConnection {
  readonly host: string;
  readonly port: number;
  private readonly clientId: string;
  private readonly requestTimeoutMs: number;
  private readonly maxInFlight: number;
  private readonly pending = new Map<number, Pending>();
  private readonly slotWaiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  private readonly writers: ByteWriter[] = [];
  private readonly versions = new Map<number, number>();
  private nextCorrelationId = 1;
  private inFlight = 0;
  private failure: Error | null = null;
  private readonly closedPromise: Promise<void>;

  private constructor(private readonly socket: Socket, private readonly frames: FrameAssembler, options: ConnectionOptions) {
    this.host = options.host;
    this.port = options.port;
    this.clientId = options.clientId ?? 'tidelog-client';
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.maxInFlight = options.maxInFlightRequests ?? DEFAULT_MAX_IN_FLIGHT_REQUESTS;
    frames.listen((frame) => this.onFrame(frame), (error) => this.destroy(new KafkaConnectionError(`bad frame from ${this.address}: ${error.message}`, { cause: error })));
    socket.on('error', (error) => this.fail(new KafkaConnectionError(`connection to ${this.address} failed: ${error.message}`, { cause: error })));
    this.closedPromise = new Promise<void>((resolve) => {
      socket.once('close', () => {
        this.fail(new KafkaConnectionError(`connection to ${this.address} closed`));
        resolve();
      });
    });
  }

  /** Opens the socket and negotiates versions; rejects (and closes) if the broker cannot serve us. */
  static async connect(options: ConnectionOptions): Promise<BrokerConnection> {
    validateOptions(options);
    const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const frames = new FrameAssembler(options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
    const socket = connect({
      host: options.host,
      port: options.port,
      noDelay: true,
      // Reading never pauses (true): what arrives is bounded by the requests in flight.
      onread: {
        buffer: () => frames.readBuffer(),
        callback: (bytes: number, buffer: Uint8Array) => {
          frames.received(bytes, buffer);
          return true;
        },
      },
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new KafkaConnectionError(`connecting to ${options.host}:${options.port} timed out after ${connectTimeoutMs} ms`));
      }, connectTimeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(new KafkaConnectionError(`connecting to ${options.host}:${options.port} failed: ${error.message}`, { cause: error }));
      });
    });
    const connection = new BrokerConnection(socket, frames, options);
    try {
      await connection.negotiate(options.requiredApis ?? []);
    } catch (error) {
      connection.destroy();
      throw error;
    }
    return connection;
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  /** True once the socket failed or was closed: make a new connection. */
  get closed(): boolean {
    return this.failure !== null;
  }

  get inFlightRequests(): number {
    return this.inFlight;
  }

  /** The negotiated version of an API; throws KafkaUnsupportedApiError when there is none. */
  versionOf(apiKey: number): number {
    const version = this.versions.get(apiKey);
    if (version === undefined) {
      throw new KafkaUnsupportedApiError(`broker ${this.address} does not support ${apiSchema(apiKey)?.name ?? `API ${apiKey}`} in a version this client speaks`);
    }
    return version;
  }

  supports(apiKey: number): boolean {
    return this.versions.has(apiKey);
  }

  /**
   * Sends one request at the negotiated version (or `version`) and decodes the answer. Rejects with
   * KafkaRequestTimeoutError, KafkaConnectionError or KafkaClosedError; never hangs.
   */
  async request<T>(apiKey: number, encode: BodyEncoder, decode: BodyDecoder<T>, options: RequestOptions = {}, version: number = this.versionOf(apiKey)): Promise<T> {
    if (this.failure !== null) throw this.failure;
    if (this.inFlight < this.maxInFlight && this.slotWaiters.length === 0) this.inFlight++;
    else await this.waitForSlot(); // the slot is handed over by releaseSlot
    return this.send(apiKey, version, encode, decode, options);
  }

  /** Closes after in-flight requests are answered (bounded by their timeouts). */
  async close(): Promise<void> {
    if (this.failure === null) {
      const waits = [...this.pending.values()].map((p) => new Promise<void>((resolve) => {
        const { resolve: done, reject } = p;
        p.resolve = (value) => { done(value); resolve(); };
        p.reject = (error) => { reject(error); resolve(); };
      }));
      await Promise.all(waits);
      this.fail(new KafkaClosedError(`connection to ${this.address} was closed by the client`));
      this.socket.end();
    }
    const timer = setTimeout(() => this.socket.destroy(), CLOSE_TIMEOUT_MS);
    await this.closedPromise;
    clearTimeout(timer);
  }

  /** Closes at once; pending requests reject with `error`. */
  destroy(error: Error = new KafkaClosedError(`connection to ${this.address} was closed by the client`)): void {
    this.fail(error);
    this.socket.destroy();
  }

  // -------------------------------------------------------------------------------------------

  private async negotiate(requiredApis: readonly number[]): Promise<void> {
    const ours = apiSchema(ApiKey.ApiVersions)!;
    let version = ours.maxVersion;
    let response = await this.apiVersions(version);
    if (response.errorCode === ErrorCode.UNSUPPORTED_VERSION) {
      // The broker answered in the v0 layout, listing what it serves of ApiVersions (KIP-511).
      const entry = response.apiKeys.find((api) => api.apiKey === ApiKey.ApiVersions);
      version = Math.min(entry?.maxVersion ?? 0, ours.maxVersion);
      response = await this.apiVersions(version);
    }
    if (response.errorCode !== ErrorCode.NONE) throw new KafkaProtocolError(response.errorCode, `ApiVersions v${version} to ${this.address}`);
    for (const api of response.apiKeys) {
      const schema = apiSchema(api.apiKey);
      if (schema === undefined || !schema.generated) continue;
      const ourMin = Math.max(schema.minVersion, CLIENT_MIN_VERSIONS[api.apiKey] ?? 0);
      const chosen = Math.min(schema.maxVersion, api.maxVersion);
      if (chosen >= ourMin && chosen >= api.minVersion) this.versions.set(api.apiKey, chosen);
    }
    const missing = [ApiKey.Metadata, ...requiredApis].filter((apiKey) => !this.versions.has(apiKey));
    if (missing.length > 0) {
      const names = missing.map((apiKey) => {
        const served = response.apiKeys.find((api) => api.apiKey === apiKey);
        const name = apiSchema(apiKey)?.name ?? `API ${apiKey}`;
        return served === undefined ? `${name} (not served)` : `${name} (broker serves v${served.minVersion}-${served.maxVersion})`;
      });
      throw new KafkaUnsupportedApiError(`broker ${this.address} lacks APIs this client needs: ${names.join(', ')}`);
    }
  }

  private apiVersions(version: number): Promise<ApiVersionsResponse> {
    this.inFlight++;
    return this.send(
      ApiKey.ApiVersions,
      version,
      (writer, v) => encodeApiVersionsRequest(writer, v, { clientSoftwareName: 'tidelog-client', clientSoftwareVersion: '0.1.0' }),
      (reader, v) => {
        // An UNSUPPORTED_VERSION answer comes in the v0 layout whatever we asked for.
        const errorCode = reader.buffer.readInt16BE(reader.position);
        return decodeApiVersionsResponse(reader, errorCode === ErrorCode.UNSUPPORTED_VERSION ? 0 : v);
      },
      {},
    ) as Promise<ApiVersionsResponse>;
  }

  private waitForSlot(): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => this.slotWaiters.push({ resolve, reject }));
  }

  private releaseSlot(): void {
    const waiter = this.slotWaiters.shift();
    if (waiter !== undefined) waiter.resolve();
    else this.inFlight--;
  }

  /** Sends with a slot already taken (inFlight counts it). */
  private send<T>(apiKey: number, apiVersion: number, encode: BodyEncoder, decode: BodyDecoder<T>, options: RequestOptions): Promise<T> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const correlationId = this.nextCorrelationId;
    this.nextCorrelationId = correlationId === INT32_MAX ? 1 : correlationId + 1;
    let writer = this.writers.pop() ?? new ByteWriter();
    let chunks: Buffer[];
    try {
      const start = beginFrame(writer);
      writeRequestHeader(writer, { apiKey, apiVersion, correlationId, clientId: this.clientId });
      encode(writer, apiVersion);
      endFrame(writer, start);
      chunks = writer.finish();
    } catch (error) {
      writer = new ByteWriter(); // the failed one may be inside a sized region: dropped
      this.writers.push(writer);
      this.releaseSlot();
      return Promise.reject(error as Error);
    }
    const expectResponse = options.expectResponse !== false;
    const timeoutMs = options.timeoutMs ?? this.requestTimeoutMs;
    const promise = new Promise<T>((resolve, reject) => {
      const entry: Pending = {
        correlationId,
        apiKey,
        apiVersion,
        decode,
        resolve: resolve as (value: unknown) => void,
        reject,
        timer: null,
      };
      entry.timer = setTimeout(() => {
        if (this.pending.get(correlationId) !== entry) return;
        this.pending.delete(correlationId);
        this.releaseSlot();
        entry.reject(new KafkaRequestTimeoutError(`${apiSchema(apiKey)?.name ?? apiKey} v${apiVersion} to ${this.address} had no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(correlationId, entry);
    });
    const onWritten = (error?: Error | null): void => {
      writer.reset();
      if (this.writers.length < WRITER_POOL_SIZE) this.writers.push(writer);
      if (error) return; // the socket's 'error' event fails every pending request
      if (!expectResponse) {
        const entry = this.pending.get(correlationId);
        if (entry === undefined) return;
        this.pending.delete(correlationId);
        if (entry.timer !== null) clearTimeout(entry.timer);
        this.releaseSlot();
        entry.resolve(undefined);
      }
    };
    const socket = this.socket;
    if (chunks.length === 1) {
      socket.write(chunks[0]!, onWritten);
    } else {
      socket.cork();
      const last = chunks.length - 1;
      for (let i = 0; i < last; i++) socket.write(chunks[i]!);
      socket.write(chunks[last]!, onWritten);
      socket.uncork();
    }
    return promise;
  }

  private onFrame(frame: Buffer): void {
    if (frame.length < 4) {
      this.destroy(new KafkaConnectionError(`a ${frame.length}-byte frame from ${this.address}`));
      return;
    }
    const correlationId = frame.readInt32BE(0);
    const entry = this.pending.get(correlationId);
    if (entry === undefined) return; // answered after its timeout: dropped
    this.pending.delete(correlationId);
    if (entry.timer !== null) clearTimeout(entry.timer);
    this.releaseSlot();
    let value: unknown;
    try {
      const reader = new ByteReader(frame);
      readResponseHeader(reader, responseHeaderVersion(entry.apiKey, entry.apiVersion));
      value = entry.decode(reader, entry.apiVersion);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      entry.reject(new KafkaConnectionError(`undecodable ${apiSchema(entry.apiKey)?.name ?? entry.apiKey} v${entry.apiVersion} response from ${this.address}: ${message}`, { cause: error }));
      return;
    }
    entry.resolve(value);
  }

  private fail(error: Error): void {
    if (this.failure !== null) return;
    this.failure = error;
    this.frames.stop();
    for (const entry of this.pending.values()) {
      if (entry.timer !== null) clearTimeout(entry.timer);
      entry.reject(error);
    }
    this.pending.clear();
    this.inFlight = 0;
    for (const waiter of this.slotWaiters.splice(0)) waiter.reject(error);
  }
}

/**
 * Splits the bytes read from a socket into frames (int32 size, then that many bytes). The socket
 * reads into readBuffer(): the rest of the frame being assembled when that is big (so the kernel
 * fills the frame in place), else a reused read buffer whose frames are copied out. Every frame
 * handed to onFrame is a buffer of its own, never a view of the reused one.
 */
export class FrameAssembler {
  private onFrame: (frame: Buffer) => void = () => undefined;
  private onError: (error: Error) => void = () => undefined;
  private readonly reused = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  private readonly sizeBytes = Buffer.alloc(FRAME_SIZE_BYTES);
  private sizeFilled = 0;
  /** The frame being assembled (its size known), and how much of it has arrived. */
  private frame: Buffer | null = null;
  private frameFilled = 0;
  private stopped = false;
  /** Bytes received so far, for error messages. */
  private consumed = 0;

  constructor(readonly maxFrameBytes: number) {
    if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 1 || maxFrameBytes > INT32_MAX) {
      throw new KafkaConfigError(`maxFrameBytes must be an integer in [1, 2^31), got ${maxFrameBytes}`);
    }
  }

  /** Frames go to onFrame; a bad frame size goes to onError, after which nothing more is read. */
  listen(onFrame: (frame: Buffer) => void, onError: (error: Error) => void): void {
    this.onFrame = onFrame;
    this.onError = onError;
  }

  /** Where the next socket read goes. */
  readBuffer(): Buffer {
    const frame = this.frame;
    if (frame !== null && frame.length - this.frameFilled >= READ_BUFFER_BYTES) return frame.subarray(this.frameFilled);
    return this.reused;
  }

  /** `bytes` were read into `buffer` (the one readBuffer() returned). */
  received(bytes: number, buffer: Uint8Array): void {
    if (this.stopped) return;
    this.consumed += bytes;
    if (buffer !== this.reused) {
      // Read in place into the frame being assembled (never past its end: the view stops there).
      this.frameFilled += bytes;
      this.completeFrame();
      return;
    }
    let position = 0;
    while (position < bytes && !this.stopped) {
      const frame = this.frame;
      if (frame !== null) {
        const n = Math.min(bytes - position, frame.length - this.frameFilled);
        this.reused.copy(frame, this.frameFilled, position, position + n);
        this.frameFilled += n;
        position += n;
        this.completeFrame();
        continue;
      }
      const n = Math.min(bytes - position, FRAME_SIZE_BYTES - this.sizeFilled);
      this.reused.copy(this.sizeBytes, this.sizeFilled, position, position + n);
      this.sizeFilled += n;
      position += n;
      if (this.sizeFilled < FRAME_SIZE_BYTES) continue;
      this.sizeFilled = 0;
      const size = this.sizeBytes.readInt32BE(0);
      if (size < 0 || size > this.maxFrameBytes) {
        this.stop();
        this.onError(new Error(`frame size ${size} is outside [0, ${this.maxFrameBytes}] (stream byte ${this.consumed - bytes + position - FRAME_SIZE_BYTES})`));
        return;
      }
      this.frame = Buffer.allocUnsafe(size);
      this.frameFilled = 0;
      this.completeFrame();
    }
  }

  /** No more frames are handed out (the connection failed or closed). */
  stop(): void {
    this.stopped = true;
    this.frame = null;
  }

  private completeFrame(): void {
    const frame = this.frame;
    if (frame === null || this.frameFilled < frame.length) return;
    this.frame = null;
    this.onFrame(frame);
  }
}

function validateOptions(options: ConnectionOptions): void {
  if (typeof options.host !== 'string' || options.host.length === 0) throw new KafkaConfigError('host must be a non-empty string');
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) throw new KafkaConfigError(`port must be an integer in [1, 65535], got ${options.port}`);
  for (const name of ['connectTimeoutMs', 'requestTimeoutMs'] as const) {
    const value = options[name];
    if (value !== undefined && (!Number.isInteger(value) || value < 1 || value > MAX_TIMER_DELAY_MS)) throw new KafkaConfigError(`${name} must be an integer in [1, ${MAX_TIMER_DELAY_MS}], got ${value}`);
  }
  const maxInFlight = options.maxInFlightRequests;
  if (maxInFlight !== undefined && (!Number.isInteger(maxInFlight) || maxInFlight < 1 || maxInFlight > MAX_IN_FLIGHT_LIMIT)) {
    throw new KafkaConfigError(`maxInFlightRequests must be an integer in [1, ${MAX_IN_FLIGHT_LIMIT}], got ${maxInFlight}`);
  }
}
