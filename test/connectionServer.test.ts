// The connection server against a fake FrameHandler. Request payloads are `command u8, seq u32,
// args`; the handler's behaviour is chosen by the command byte:
//   e  echo the payload at once          n  no response (like Produce acks=0)
//   h  hold: the test settles it by hand  x  respond at once with `args u32` body bytes after seq
//   m  reject as malformed                b  reject with a plain Error (a bug)
import { EventEmitter, once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionServer, type BrokerResponse, type ConnectionLimits, type FrameHandler, type RequestContext } from '../server/connectionServer.js';
import { MemoryLogger } from '../engine/logger.js';
import { FrameReader } from '../protocol/frame.js';
import { waitFor } from './support/waitFor.js';

const WAIT_MS = 10_000;

class FakeMalformedError extends Error {
  override readonly name = 'FakeMalformedError';
}

interface HeldCall {
  seq: number;
  context: RequestContext;
  resolve: (response: BrokerResponse | null) => void;
}

interface TrackedResponse extends BrokerResponse {
  released: number;
}

function request(command: string, seq: number, args?: number): Buffer {
  const payload = Buffer.alloc(args === undefined ? 5 : 9);
  payload.write(command, 0, 'latin1');
  payload.writeUInt32BE(seq, 1);
  if (args !== undefined) payload.writeUInt32BE(args, 5);
  const frame = Buffer.alloc(4 + payload.length);
  frame.writeInt32BE(payload.length, 0);
  payload.copy(frame, 4);
  return frame;
}

class FakeHandler implements FrameHandler {
  readonly events = new EventEmitter();
  /** Every frame passed in, by command and seq. */
  readonly calls: Array<{ command: string; seq: number; connectionId: number }> = [];
  readonly held: HeldCall[] = [];
  readonly responses: TrackedResponse[] = [];
  private readonly sharedBody = Buffer.alloc(1024 * 1024, 0x61);

  handleFrame(frame: Buffer, context: RequestContext): Promise<BrokerResponse | null> {
    const command = String.fromCharCode(frame[0]!);
    const seq = frame.readUInt32BE(1);
    this.calls.push({ command, seq, connectionId: context.connectionId });
    this.events.emit('call');
    switch (command) {
      case 'e':
        return Promise.resolve(this.response([Buffer.from(frame)]));
      case 'n':
        return Promise.resolve(null);
      case 'x': {
        const seqBytes = Buffer.alloc(4);
        seqBytes.writeUInt32BE(seq, 0);
        return Promise.resolve(this.response([seqBytes, this.sharedBody.subarray(0, frame.readUInt32BE(5))]));
      }
      case 'h':
        return new Promise((resolve) => {
          this.held.push({ seq, context, resolve });
          this.events.emit('held');
        });
      case 'm':
        return Promise.reject(new FakeMalformedError('unknown api key 999'));
      case 'b':
        return Promise.reject(new Error('handler bug'));
      default:
        throw new Error(`unknown test command ${command}`);
    }
  }

  /** A response frame whose payload is `parts`, written as several chunks (prefix separate). */
  response(parts: Buffer[]): TrackedResponse {
    const size = Buffer.alloc(4);
    size.writeInt32BE(parts.reduce((sum, part) => sum + part.length, 0), 0);
    const tracked: TrackedResponse = {
      chunks: [size, ...parts],
      released: 0,
      release: () => {
        tracked.released++;
        this.events.emit('released');
      },
    };
    this.responses.push(tracked);
    return tracked;
  }

  /** Settles the held request `seq` with an echo response. */
  settle(seq: number): TrackedResponse {
    const index = this.held.findIndex((call) => call.seq === seq);
    if (index < 0) throw new Error(`no held request ${seq}`);
    const [call] = this.held.splice(index, 1);
    const seqBytes = Buffer.alloc(5);
    seqBytes.write('h', 0, 'latin1');
    seqBytes.writeUInt32BE(seq, 1);
    const response = this.response([seqBytes]);
    call!.resolve(response);
    return response;
  }
}

/** Resolves once `condition()` holds, checking now and on every `event` of `emitter`. */
function waitForEvent(emitter: EventEmitter, event: string, condition: () => boolean, label: string, timeoutMs = WAIT_MS): Promise<void> {
  return new Promise((resolve, reject) => {
    if (condition()) {
      resolve();
      return;
    }
    const timer = setTimeout(() => {
      emitter.off(event, check);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for: ${label}`));
    }, timeoutMs);
    function check(): void {
      if (!condition()) return;
      clearTimeout(timer);
      emitter.off(event, check);
      resolve();
    }
    emitter.on(event, check);
  });
}

/** For server-side state that has no event: checks every millisecond, bounded in time. */
async function eventually(condition: () => boolean, label: string, timeoutMs = WAIT_MS): Promise<void> {
  await waitFor(condition, { timeoutMs, what: label, intervalMs: 1 });
}

class TestClient extends EventEmitter {
  readonly frames: Buffer[] = [];
  closed = false;
  private readonly reader = new FrameReader();

  private constructor(readonly socket: Socket) {
    super();
    socket.on('data', (chunk: Buffer) => {
      this.reader.push(chunk);
      for (let frame = this.reader.next(); frame !== undefined; frame = this.reader.next()) {
        // Keep only the first bytes: enough to tell responses apart, without holding megabytes.
        this.frames.push(Buffer.from(frame.subarray(0, 16)));
        this.emit('frame');
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.emit('close');
    });
  }

  static async connect(port: number): Promise<TestClient> {
    const socket = connect({ host: '127.0.0.1', port });
    const client = new TestClient(socket);
    await Promise.race([once(socket, 'connect'), once(socket, 'close').then(() => Promise.reject(new Error('closed before connecting')))]);
    return client;
  }

  send(...frames: Buffer[]): void {
    this.socket.write(Buffer.concat(frames));
  }

  waitForFrames(count: number, label = `${count} response frames`): Promise<Buffer[]> {
    return waitForEvent(this, 'frame', () => this.frames.length >= count || this.closed, label).then(() => {
      if (this.frames.length < count) throw new Error(`connection closed with ${this.frames.length} of ${count} frames`);
      return this.frames;
    });
  }

  waitForClose(label = 'the server to close the connection'): Promise<void> {
    return waitForEvent(this, 'close', () => this.closed, label);
  }
}

/** The seq a response frame answers (echo and hold responses start with command u8 then seq). */
function seqOf(frame: Buffer): number {
  return frame.readUInt32BE(1);
}

const servers: ConnectionServer[] = [];
const clients: TestClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.socket.destroy();
  for (const server of servers.splice(0)) await server.close({ graceMs: 0 });
});

async function startServer(limits: Partial<ConnectionLimits> = {}): Promise<{ server: ConnectionServer; handler: FakeHandler; logger: MemoryLogger; port: number }> {
  const handler = new FakeHandler();
  const logger = new MemoryLogger();
  const server = new ConnectionServer({ handler, logger, isMalformed: (error) => error instanceof FakeMalformedError, ...limits });
  servers.push(server);
  const { port } = await server.listen('127.0.0.1', 0);
  return { server, handler, logger, port };
}

async function client(port: number): Promise<TestClient> {
  const connected = await TestClient.connect(port);
  clients.push(connected);
  return connected;
}

/** A round trip on its own connection: by its end the server has run several event-loop turns. */
async function roundTrip(port: number): Promise<void> {
  const probe = await client(port);
  probe.send(request('e', 4242));
  await probe.waitForFrames(1, 'the probe echo');
  probe.socket.destroy();
}

describe('ConnectionServer', () => {
  it('writes responses in request order even when the handler finishes them out of order', async () => {
    const { handler, port } = await startServer();
    const connection = await client(port);
    connection.send(request('h', 1), request('h', 2), request('n', 3), request('h', 4), request('e', 5), request('h', 6));
    await waitForEvent(handler.events, 'held', () => handler.held.length === 4, 'four held requests');
    expect(handler.calls.map((call) => call.seq)).toEqual([1, 2, 3, 4, 5, 6]);

    const settled = [handler.settle(4), handler.settle(6), handler.settle(2)];
    await roundTrip(port);
    expect(connection.frames).toHaveLength(0); // 1 is still being worked on: nothing may overtake it
    settled.push(handler.settle(1));

    const frames = await connection.waitForFrames(5);
    // 3 has no response (acks=0); everything else in request order.
    expect(frames.map(seqOf)).toEqual([1, 2, 4, 5, 6]);
    await waitForEvent(handler.events, 'released', () => handler.responses.every((response) => response.released === 1), 'every response released once');
  });

  it('refuses a frame over socket.request.max.bytes from its size prefix alone and closes the connection', async () => {
    const { server, handler, logger, port } = await startServer({ socketRequestMaxBytes: 1024 * 1024 });
    const connection = await client(port);
    const oneGiB = Buffer.alloc(4);
    oneGiB.writeInt32BE(1024 * 1024 * 1024, 0);
    connection.send(oneGiB);
    await connection.waitForClose();

    expect(handler.calls).toHaveLength(0);
    const refusals = logger.lines.filter((line) => line.message.includes('frame size refused'));
    expect(refusals).toHaveLength(1);
    expect(refusals[0]!.fields).toMatchObject({ size: 1024 * 1024 * 1024, limit: 1024 * 1024, connection: 1 });
    expect(String(refusals[0]!.fields['remote'])).toMatch(/^127\.0\.0\.1:\d+$/);
    await eventually(() => server.stats().connectionsOpen === 0, 'the server to drop the connection');
    expect(server.stats()).toMatchObject({ framesRefused: 1, bytesIn: 4, requests: 0 });
  });

  it('closes only the connection that sent a malformed request; another keeps working', async () => {
    const { server, logger, port } = await startServer();
    const good = await client(port);
    const bad = await client(port);
    good.send(request('e', 1));
    await good.waitForFrames(1);

    bad.send(request('m', 7));
    await bad.waitForClose();
    const lines = logger.lines.filter((line) => line.message.includes('malformed request'));
    expect(lines).toHaveLength(1);
    expect(lines[0]!.level).toBe('warn');
    expect(lines[0]!.fields).toMatchObject({ connection: 2, reason: 'unknown api key 999' });
    expect(String(lines[0]!.fields['remote'])).toMatch(/^127\.0\.0\.1:\d+$/);

    good.send(request('e', 2));
    expect((await good.waitForFrames(2)).map(seqOf)).toEqual([1, 2]);
    expect(good.closed).toBe(false);
    expect(server.stats().malformedRequests).toBe(1);
  });

  it('logs a handler error that is not a malformed request with its stack and closes that connection', async () => {
    const { server, logger, port } = await startServer();
    const connection = await client(port);
    connection.send(request('b', 1));
    await connection.waitForClose();
    const line = logger.lines.find((entry) => entry.level === 'error');
    expect(line?.message).toContain('request handler failed');
    expect(String(line?.fields['error'])).toMatch(/Error: handler bug\n\s+at /);
    expect(server.stats().handlerErrors).toBe(1);
  });

  it('stops passing frames to the handler at the in-flight bound and resumes below it', async () => {
    const maxInFlight = 4;
    const { server, handler, port } = await startServer({ maxInFlightRequestsPerConnection: maxInFlight });
    const connection = await client(port);
    connection.send(...Array.from({ length: 10 }, (_, index) => request('h', index + 1)));
    await waitForEvent(handler.events, 'held', () => handler.held.length === maxInFlight, `${maxInFlight} held requests`);
    await eventually(() => server.stats().readPausesInFlight === 1, 'the connection to pause reading');
    // Give the server every chance to take more: it must not.
    await roundTrip(port);
    await roundTrip(port);
    expect(handler.calls.filter((call) => call.command === 'h').map((call) => call.seq)).toEqual([1, 2, 3, 4]);
    expect(server.stats().inFlightRequests).toBe(maxInFlight);

    // One response written frees one slot: exactly one more request is taken.
    handler.settle(1);
    await waitForEvent(handler.events, 'held', () => handler.held.length === maxInFlight, 'the fifth request');
    expect(handler.held.map((call) => call.seq)).toEqual([2, 3, 4, 5]);
    await roundTrip(port);
    expect(handler.calls.filter((call) => call.command === 'h')).toHaveLength(5);

    for (let seq = 2; seq <= 10; seq++) {
      await waitForEvent(handler.events, 'held', () => handler.held.some((call) => call.seq === seq), `request ${seq}`);
      handler.settle(seq);
    }
    expect((await connection.waitForFrames(10)).map(seqOf)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('stops reading from a client that never reads once the queued response bytes pass the bound', async () => {
    const maxQueuedBytes = 256 * 1024;
    const maxInFlight = 4;
    const responseBytes = 64 * 1024;
    const requests = 400; // 25 MiB of responses: far more than the socket buffers between us hold
    const { server, handler, port } = await startServer({ maxQueuedResponseBytesPerConnection: maxQueuedBytes, maxInFlightRequestsPerConnection: maxInFlight });
    const slow = await client(port);
    slow.socket.pause();
    slow.send(...Array.from({ length: requests }, (_, index) => request('x', index + 1, responseBytes)));

    await eventually(() => server.stats().readPausesQueuedBytes >= 1, 'the connection to pause on its queued bytes');
    // The client's own read buffer may still take a little in the next turns; let it settle.
    await roundTrip(port);
    await roundTrip(port);
    const handled = handler.calls.filter((call) => call.command === 'x').length;
    expect(server.stats().queuedResponseBytes).toBeGreaterThan(maxQueuedBytes);
    // From here nothing moves while the client does not read.
    await roundTrip(port);
    await roundTrip(port);
    await roundTrip(port);
    const stats = server.stats();
    expect(handler.calls.filter((call) => call.command === 'x')).toHaveLength(handled);
    expect(handled).toBeLessThan(requests);
    // Memory stays bounded: the queue bound plus what the in-flight requests may add.
    expect(stats.queuedResponseBytes).toBeLessThanOrEqual(maxQueuedBytes + maxInFlight * (responseBytes + 8));
    expect(stats.inFlightRequests).toBeLessThanOrEqual(maxInFlight);

    // Once the client reads again, the server drains and finishes every request, in order.
    slow.socket.resume();
    const frames = await slow.waitForFrames(requests, 'every response after the client resumes reading');
    expect(frames.map((frame) => frame.readUInt32BE(0))).toEqual(Array.from({ length: requests }, (_, index) => index + 1));
    await waitForEvent(handler.events, 'released', () => handler.responses.every((response) => response.released === 1), 'every response released');
  });

  it('closes connections over max.connections at once with a log line, and accepts again below it', async () => {
    const { server, logger, port } = await startServer({ maxConnections: 2 });
    const first = await client(port);
    const second = await client(port);
    first.send(request('e', 1));
    second.send(request('e', 1));
    await first.waitForFrames(1);
    await second.waitForFrames(1);

    const third = await client(port);
    await third.waitForClose('the third connection to be closed');
    const line = logger.lines.find((entry) => entry.message.includes('max.connections'));
    expect(line?.fields).toMatchObject({ maxConnections: 2 });
    expect(server.stats()).toMatchObject({ connectionsOpen: 2, connectionsRefused: 1, connectionsTotal: 2 });

    first.socket.destroy();
    await eventually(() => server.stats().connectionsOpen === 1, 'the server to see the first connection go');
    const fourth = await client(port);
    fourth.send(request('e', 9));
    expect((await fourth.waitForFrames(1)).map(seqOf)).toEqual([9]);
  });

  it('closes gracefully: stops accepting, finishes the requests in flight, writes their responses, then closes', async () => {
    const { server, handler, port } = await startServer();
    const connection = await client(port);
    connection.send(request('h', 1), request('e', 2));
    await waitForEvent(handler.events, 'held', () => handler.held.length === 1, 'the held request');

    let closed = false;
    const closing = server.close({ graceMs: WAIT_MS }).then(() => (closed = true));
    await expect(TestClient.connect(port)).rejects.toThrow();
    // Requests sent after close began are not taken.
    connection.send(request('e', 3));
    await roundTripRefused(port);
    expect(closed).toBe(false);
    expect(connection.closed).toBe(false);

    handler.settle(1);
    await connection.waitForClose('the connection to close after its responses');
    expect(connection.frames.map(seqOf)).toEqual([1, 2]);
    await closing;
    expect(closed).toBe(true);
    expect(handler.calls.map((call) => call.seq)).toEqual([1, 2]);
  });

  it('closes after the grace period when a request never finishes, aborting its signal and releasing a late response', async () => {
    const { server, handler, port } = await startServer();
    const connection = await client(port);
    connection.send(request('h', 1));
    await waitForEvent(handler.events, 'held', () => handler.held.length === 1, 'the held request');
    const signal = handler.held[0]!.context.signal;

    await server.close({ graceMs: 20 });
    await connection.waitForClose();
    expect(signal.aborted).toBe(true);
    const late = handler.settle(1);
    await waitForEvent(handler.events, 'released', () => late.released === 1, 'the late response to be released');
  });

  it('aborts the request context signal when the client disconnects, and releases the response that comes after', async () => {
    const { server, handler, port } = await startServer();
    const connection = await client(port);
    connection.send(request('h', 1));
    await waitForEvent(handler.events, 'held', () => handler.held.length === 1, 'the held request');
    const { context } = handler.held[0]!;
    expect(context.signal.aborted).toBe(false);
    expect(context.connectionId).toBe(1);
    expect(context.remoteAddress).toMatch(/^127\.0\.0\.1:\d+$/);

    const aborted = once(context.signal, 'abort');
    connection.socket.destroy();
    await Promise.race([aborted, new Promise((_, reject) => setTimeout(() => reject(new Error('no abort within the wait')), WAIT_MS))]);
    expect(context.signal.aborted).toBe(true);
    const late = handler.settle(1);
    await waitForEvent(handler.events, 'released', () => late.released === 1, 'the late response to be released');
    await eventually(() => server.stats().connectionsOpen === 0, 'the server to drop the connection');
  });

  it('counts connections, requests and bytes', async () => {
    const { server, port } = await startServer();
    const connection = await client(port);
    connection.send(request('e', 1), request('e', 2));
    await connection.waitForFrames(2);
    await eventually(() => server.stats().responses === 2, 'both writes to complete');
    expect(server.stats()).toMatchObject({ connectionsOpen: 1, connectionsTotal: 1, requests: 2, responses: 2, bytesIn: 18, bytesOut: 18, inFlightRequests: 0, queuedResponseBytes: 0 });
  });

  it('validates its limits with the valid range in the message', () => {
    const base = { handler: new FakeHandler(), logger: new MemoryLogger(), isMalformed: () => false };
    expect(() => new ConnectionServer({ ...base, maxInFlightRequestsPerConnection: 0 })).toThrow('maxInFlightRequestsPerConnection must be an integer in [1, 10000], got 0');
    expect(() => new ConnectionServer({ ...base, maxConnections: 1.5 })).toThrow('maxConnections must be an integer in [1, 1000000], got 1.5');
  });
});

/** While the server is closing, a new connection must be refused. */
async function roundTripRefused(port: number): Promise<void> {
  await expect(TestClient.connect(port)).rejects.toThrow();
}
