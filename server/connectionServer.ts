// The TCP listener and its connections: bytes in, frames to the handler, responses out in order.
//
// Per connection:
//   socket 'data' -> FrameReader (size checked against socket.request.max.bytes before any body is
//   buffered) -> handler.handleFrame(frame) for every whole frame, concurrently
//   responses are written strictly in request order: a slot per request, written when it and every
//   slot before it are done; one response's chunks go out corked (one writev)
//   response.release() runs once its write completed, or when the connection dies
//
// Bounds (each a BrokerConfig field, defaults from defaultBrokerConfig()):
//   - requests dispatched and not yet written (maxInFlightRequestsPerConnection): at the bound the
//     connection stops taking frames from its reader and pauses the socket;
//   - response bytes queued on the socket (maxQueuedResponseBytesPerConnection): above it the same
//     pause, until the writes drain. A client that never reads therefore costs at most
//     maxQueuedResponseBytes + maxInFlight responses, plus the socket's own read buffers;
//   - open connections (maxConnections): extra ones are closed at once with a log line.
//
// Connection-level failures close only that connection: a refused or malformed frame (one warn line
// naming the connection, remote address and reason), a handler bug (one error line with its stack).
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { BrokerResponse, RequestContext } from '../engine/broker.js';
import { defaultBrokerConfig } from '../engine/brokerConfig.js';
import { descriptorExhaustionError } from '../engine/fileDescriptors.js';
import type { Logger } from '../engine/logger.js';
import { FrameReader } from '../protocol/frame.js';
import { ProtocolDecodeError } from '../protocol/wire.js';
import { INT32_MAX } from '../common/limits.js';

export type { BrokerResponse, RequestContext };

/** What the server needs of the broker; `Broker` from engine/broker.ts fits it. */
export interface FrameHandler {
  handleFrame(frame: Buffer, context: RequestContext): Promise<BrokerResponse | null>;
}

export interface ConnectionLimits {
  /** Frames larger than this are refused before their body is buffered (socket.request.max.bytes). */
  socketRequestMaxBytes: number;
  /** Requests of one connection dispatched and not yet written; reading pauses at this many. */
  maxInFlightRequestsPerConnection: number;
  /** Response bytes queued on one socket above which reading pauses until they drain. */
  maxQueuedResponseBytesPerConnection: number;
  maxConnections: number;
}

export interface ConnectionServerOptions extends Partial<ConnectionLimits> {
  handler: FrameHandler;
  /** True for the handler's "this request cannot be decoded" error (engine's MalformedRequestError). */
  isMalformed: (error: unknown) => boolean;
  logger: Logger;
}

export interface ConnectionServerStats {
  connectionsOpen: number;
  /** Connections accepted since start (refused ones not counted). */
  connectionsTotal: number;
  /** Connections closed at once because maxConnections were open. */
  connectionsRefused: number;
  /** Frames passed to the handler. */
  requests: number;
  /** Responses whose write completed. */
  responses: number;
  bytesIn: number;
  /** Response bytes whose write completed. */
  bytesOut: number;
  /** Frames refused for their size (over the limit, or negative). */
  framesRefused: number;
  /** Connections closed for a malformed request. */
  malformedRequests: number;
  /** Connections closed for a handler error that was not a malformed request (bugs). */
  handlerErrors: number;
  /** Times a connection paused reading at the in-flight bound. */
  readPausesInFlight: number;
  /** Times a connection paused reading at the queued-response-bytes bound. */
  readPausesQueuedBytes: number;
  /** Now: requests dispatched and not yet written, over all connections. */
  inFlightRequests: number;
  /** Now: bytes queued on the sockets (written by us, not yet taken by the kernel). */
  queuedResponseBytes: number;
}

type Counters = Omit<ConnectionServerStats, 'connectionsOpen' | 'inFlightRequests' | 'queuedResponseBytes'>;

const MAX_TCP_PORT = 65_535;

function limitsFrom(options: Partial<ConnectionLimits>): ConnectionLimits {
  const defaults = defaultBrokerConfig();
  const limits: ConnectionLimits = {
    socketRequestMaxBytes: options.socketRequestMaxBytes ?? defaults.socketRequestMaxBytes,
    maxInFlightRequestsPerConnection: options.maxInFlightRequestsPerConnection ?? defaults.maxInFlightRequestsPerConnection,
    maxQueuedResponseBytesPerConnection: options.maxQueuedResponseBytesPerConnection ?? defaults.maxQueuedResponseBytesPerConnection,
    maxConnections: options.maxConnections ?? defaults.maxConnections,
  };
  const ranges: Record<keyof ConnectionLimits, [number, number]> = {
    socketRequestMaxBytes: [1, INT32_MAX],
    maxInFlightRequestsPerConnection: [1, 10_000],
    maxQueuedResponseBytesPerConnection: [1, Number.MAX_SAFE_INTEGER],
    maxConnections: [1, 1_000_000],
  };
  for (const [name, [min, max]] of Object.entries(ranges) as Array<[keyof ConnectionLimits, [number, number]]>) {
    const value = limits[name];
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${value}`);
    }
  }
  return limits;
}

/** The size FrameReader refused, from its message (it carries no typed field for it). */
function refusedFrameSize(error: ProtocolDecodeError): number | undefined {
  const match = /frame size (-?\d+)/.exec(error.message);
  return match === null ? undefined : Number(match[1]);
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function remoteAddressOf(socket: Socket): string {
  const address = socket.remoteAddress ?? 'unknown';
  const port = socket.remotePort ?? 0;
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

type PauseReason = 'in-flight' | 'queued-bytes';

interface Slot {
  done: boolean;
  response: BrokerResponse | null;
}

/** What every connection of one server shares. */
interface ConnectionShared {
  handler: FrameHandler;
  isMalformed: (error: unknown) => boolean;
  logger: Logger;
  limits: ConnectionLimits;
  counters: Counters;
}

export class ConnectionServer {
  readonly limits: ConnectionLimits;
  private readonly logger: Logger;
  private readonly shared: ConnectionShared;
  private readonly server: Server;
  private readonly connections = new Set<Connection>();
  private readonly counters: Counters = {
    connectionsTotal: 0,
    connectionsRefused: 0,
    requests: 0,
    responses: 0,
    bytesIn: 0,
    bytesOut: 0,
    framesRefused: 0,
    malformedRequests: 0,
    handlerErrors: 0,
    readPausesInFlight: 0,
    readPausesQueuedBytes: 0,
  };
  private nextConnectionId = 1;
  private listening = false;
  private closing: Promise<void> | null = null;

  constructor(options: ConnectionServerOptions) {
    this.limits = limitsFrom(options);
    this.logger = options.logger;
    this.shared = { handler: options.handler, isMalformed: options.isMalformed, logger: options.logger, limits: this.limits, counters: this.counters };
    // No half-open connections: as in Kafka, the peer's FIN means the client is gone, so the
    // connection closes (after the bytes already queued) and its in-flight requests are aborted
    // at once instead of running on, a long-poll Fetch for instance, for nobody.
    this.server = createServer({ noDelay: true, allowHalfOpen: false });
    this.server.on('connection', (socket) => this.accept(socket));
  }

  /** Binds and starts accepting. Port 0 picks a free port: read it from the result or `address`. */
  async listen(host: string, port: number): Promise<{ host: string; port: number }> {
    if (!Number.isInteger(port) || port < 0 || port > MAX_TCP_PORT) throw new RangeError(`port must be an integer in [0, ${MAX_TCP_PORT}], got ${port}`);
    if (this.listening || this.closing !== null) throw new Error('ConnectionServer.listen called twice or after close');
    this.listening = true;
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.server.once('error', onError);
      this.server.listen({ host, port }, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    // After listen, errors come from accept (EMFILE and the like): report, keep serving. Out of
    // descriptors, libuv (Node 20, seen here) retries the accept each turn while the listening
    // socket stays readable, a busy core but no lost connection, and the connections already
    // accepted are served; where it reports a failed accept, Node emits it here.
    this.server.on('error', (error) => this.logger.error('listener error', { error: describeError(descriptorExhaustionError(error, 'accepting a connection') ?? error) }));
    return this.address;
  }

  get address(): { host: string; port: number } {
    const address = this.server.address() as AddressInfo | null;
    if (address === null) throw new Error('ConnectionServer is not listening');
    return { host: address.address, port: address.port };
  }

  stats(): ConnectionServerStats {
    let inFlightRequests = 0;
    let queuedResponseBytes = 0;
    for (const connection of this.connections) {
      inFlightRequests += connection.inFlight;
      queuedResponseBytes += connection.queuedBytes;
    }
    return { ...this.counters, connectionsOpen: this.connections.size, inFlightRequests, queuedResponseBytes };
  }

  /**
   * Stops accepting and reading new requests; waits up to graceMs for the requests being worked on
   * and their responses to be written, then closes what is left. Idempotent.
   */
  close(options: { graceMs: number }): Promise<void> {
    if (!Number.isFinite(options.graceMs) || options.graceMs < 0) throw new RangeError(`graceMs must be a finite number >= 0, got ${options.graceMs}`);
    this.closing ??= this.closeOnce(options.graceMs);
    return this.closing;
  }

  private async closeOnce(graceMs: number): Promise<void> {
    const serverClosed = this.listening
      ? new Promise<void>((resolve) => this.server.close(() => resolve()))
      : Promise.resolve();
    const connections = [...this.connections];
    const allClosed = Promise.all(connections.map((connection) => connection.drainAndClose()));
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([allClosed, graceOver]);
    clearTimeout(timer);
    for (const connection of this.connections) connection.destroy();
    await allClosed;
    await serverClosed;
  }

  private accept(socket: Socket): void {
    const remoteAddress = remoteAddressOf(socket);
    if (this.closing !== null) {
      socket.destroy();
      return;
    }
    if (this.connections.size >= this.limits.maxConnections) {
      this.counters.connectionsRefused++;
      this.logger.warn('connection refused: max.connections reached', { remote: remoteAddress, maxConnections: this.limits.maxConnections });
      socket.destroy();
      return;
    }
    this.counters.connectionsTotal++;
    const connection = new Connection(this.nextConnectionId++, socket, remoteAddress, this.shared);
    this.connections.add(connection);
    socket.once('close', () => this.connections.delete(connection));
  }
}

/** One accepted socket. It owns the socket: nothing else reads, writes or destroys it. */
class Connection {
  private readonly reader: FrameReader;
  private readonly abort = new AbortController();
  private readonly context: RequestContext;
  /** Requests in arrival order, dispatched and not yet written. */
  private slots: Slot[] = [];
  /** Responses handed to the socket whose write has not completed. */
  private readonly writing = new Set<BrokerResponse>();
  private readonly handler: FrameHandler;
  private readonly isMalformed: (error: unknown) => boolean;
  private readonly logger: Logger;
  private readonly limits: ConnectionLimits;
  private readonly counters: Counters;
  /** Why reading is paused, or null while it reads. */
  private pauseReason: PauseReason | null = null;
  /** close() began: no new requests; the socket ends once the dispatched ones are written. */
  private draining = false;
  private ended = false;
  /** 'close' was emitted. */
  private closed = false;
  private readonly closedPromise: Promise<void>;

  constructor(
    readonly id: number,
    private readonly socket: Socket,
    readonly remoteAddress: string,
    shared: ConnectionShared,
  ) {
    ({ handler: this.handler, isMalformed: this.isMalformed, logger: this.logger, limits: this.limits, counters: this.counters } = shared);
    this.reader = new FrameReader(this.limits.socketRequestMaxBytes);
    this.context = { connectionId: id, remoteAddress, signal: this.abort.signal };
    this.closedPromise = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.pump());
    // Resets and the like: 'close' follows, which is where the cleanup happens.
    socket.on('error', () => undefined);
    socket.once('close', () => this.onClose());
  }

  get inFlight(): number {
    return this.slots.length;
  }

  get queuedBytes(): number {
    return this.closed ? 0 : this.socket.writableLength;
  }

  /** Stops taking requests; closes once every dispatched request's response is written. */
  drainAndClose(): Promise<void> {
    if (!this.closed && !this.draining) {
      this.draining = true;
      this.socket.pause();
      this.checkDrained();
    }
    return this.closedPromise;
  }

  destroy(): void {
    this.socket.destroy();
  }


  private onData(chunk: Buffer): void {
    this.counters.bytesIn += chunk.length;
    // While draining, the socket reads only to see the peer's FIN; requests are ignored.
    if (this.draining || this.closed) return;
    this.reader.push(chunk);
    this.pump();
  }

  /** Dispatches buffered frames while the bounds allow, then pauses or resumes the socket. */
  private pump(): void {
    while (this.canDispatch()) {
      let frame: Buffer | undefined;
      try {
        frame = this.reader.next();
      } catch (error) {
        this.refuseFrame(error);
        return;
      }
      if (frame === undefined) break;
      this.dispatch(frame);
    }
    this.updateReading();
    this.checkDrained();
  }

  private canDispatch(): boolean {
    return !this.dead && !this.draining && this.slots.length < this.limits.maxInFlightRequestsPerConnection && this.socket.writableLength <= this.limits.maxQueuedResponseBytesPerConnection;
  }

  private updateReading(): void {
    if (this.dead || this.draining) return;
    const reason: PauseReason | null =
      this.socket.writableLength > this.limits.maxQueuedResponseBytesPerConnection
        ? 'queued-bytes'
        : this.slots.length >= this.limits.maxInFlightRequestsPerConnection
          ? 'in-flight'
          : null;
    if (reason === this.pauseReason) return;
    // Counted per reason it pauses for, including a switch of reason while paused.
    if (reason === 'queued-bytes') this.counters.readPausesQueuedBytes++;
    if (reason === 'in-flight') this.counters.readPausesInFlight++;
    if (reason === null) this.socket.resume();
    else if (this.pauseReason === null) this.socket.pause();
    this.pauseReason = reason;
  }

  private dispatch(frame: Buffer): void {
    const slot: Slot = { done: false, response: null };
    this.slots.push(slot);
    this.counters.requests++;
    let pending: Promise<BrokerResponse | null>;
    try {
      pending = this.handler.handleFrame(frame, this.context);
    } catch (error) {
      pending = Promise.reject(error);
    }
    // Both callbacks catch everything they could throw: this promise chain cannot reject.
    void pending.then(
      (response) => this.complete(slot, response),
      (error: unknown) => this.fail(error),
    );
  }

  /** Closed, destroyed, or ended by the peer's FIN: nothing more is written. */
  private get dead(): boolean {
    return this.closed || this.socket.destroyed || this.socket.writableEnded;
  }

  private complete(slot: Slot, response: BrokerResponse | null): void {
    if (this.dead) {
      // The connection died while the request was worked on: nobody will write this.
      if (response !== null) this.release(response);
      return;
    }
    slot.done = true;
    slot.response = response;
    try {
      while (this.slots[0]?.done === true) {
        const next = this.slots.shift()!;
        if (next.response !== null) this.write(next.response);
      }
      this.pump();
    } catch (error) {
      this.logger.error('closing connection: response write failed (bug)', { connection: this.id, remote: this.remoteAddress, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
      this.counters.handlerErrors++;
      this.socket.destroy();
    }
  }

  private write(response: BrokerResponse): void {
    const chunks = response.chunks;
    if (chunks.length === 0) {
      this.release(response);
      throw new Error('a BrokerResponse must have at least one chunk (the size prefix)');
    }
    let bytes = 0;
    for (const chunk of chunks) bytes += chunk.length;
    this.writing.add(response);
    this.socket.cork();
    for (let index = 0; index < chunks.length; index++) {
      const last = index === chunks.length - 1;
      this.socket.write(chunks[index]!, last ? (error) => this.written(response, bytes, error ?? null) : undefined);
    }
    this.socket.uncork();
  }

  private written(response: BrokerResponse, bytes: number, error: Error | null): void {
    if (!this.writing.delete(response)) return; // already released by onClose
    this.release(response);
    if (error !== null || this.dead) return;
    this.counters.responses++;
    this.counters.bytesOut += bytes;
    this.pump();
  }

  private release(response: BrokerResponse): void {
    try {
      response.release();
    } catch (error) {
      this.logger.error('response release failed (bug)', { connection: this.id, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    }
  }

  private fail(error: unknown): void {
    if (this.dead) return;
    if (this.isMalformed(error)) {
      this.counters.malformedRequests++;
      this.logger.warn('closing connection: malformed request', { connection: this.id, remote: this.remoteAddress, reason: describeError(error) });
    } else {
      this.counters.handlerErrors++;
      this.logger.error('closing connection: request handler failed (bug)', { connection: this.id, remote: this.remoteAddress, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    }
    this.socket.destroy();
  }

  private refuseFrame(error: unknown): void {
    if (error instanceof ProtocolDecodeError) {
      this.counters.framesRefused++;
      const size = refusedFrameSize(error);
      this.logger.warn('closing connection: frame size refused', {
        connection: this.id,
        remote: this.remoteAddress,
        size: size ?? 'unknown',
        limit: this.limits.socketRequestMaxBytes,
        reason: size !== undefined && size < 0 ? 'negative size' : 'over socket.request.max.bytes',
      });
    } else {
      this.counters.malformedRequests++;
      this.logger.warn('closing connection: malformed frame', { connection: this.id, remote: this.remoteAddress, reason: describeError(error) });
    }
    this.socket.destroy();
  }

  private checkDrained(): void {
    if (!this.draining || this.ended || this.dead || this.slots.length > 0 || this.writing.size > 0) return;
    this.ended = true;
    // Everything written: half-close and read on (discarding) so the peer's FIN ends the socket.
    this.socket.end();
    this.socket.resume();
  }

  private onClose(): void {
    this.closed = true;
    this.abort.abort(new Error(`connection ${this.id} closed`));
    for (const slot of this.slots) {
      if (slot.response !== null) this.release(slot.response);
    }
    this.slots = [];
    for (const response of this.writing) this.release(response);
    this.writing.clear();
  }
}
