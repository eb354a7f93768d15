// A broker node as a process: the metadata store, the listener, the broker, and their order.
//
// Start: open the embedded metadata store -> bind the listener -> Broker.start -> serve requests.
// The listener is bound before the broker starts (as Kafka binds its acceptors first) so that a
// port picked by the OS (port 0) is known when the broker is given its advertised address.
// Connections accepted during the broker's start-up (log recovery) are held: their requests wait
// for the broker, within the connection bounds.
//
// Stop: stop accepting and reading -> let in-flight requests finish and be written (grace period)
// -> broker.shutdown() (flush, checkpoints, clean-shutdown marker) -> close the store.
import { hostname } from 'node:os';
import { Broker, MalformedRequestError } from '../engine/broker.js';
import type { BrokerConfig } from '../engine/brokerConfig.js';
import type { Clock } from '../engine/clock.js';
import { streamLogger, type Logger } from '../engine/logger.js';
import { ConnectionServer, type BrokerResponse, type FrameHandler, type RequestContext } from './connectionServer.js';
import { EmbeddedMetadataStore } from '../cluster/embeddedMetadataStore.js';

/** How long stop() lets in-flight requests finish before closing their connections. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;
const MAX_SHUTDOWN_GRACE_MS = 10 * 60 * 1000;

/**
 * `advertisedPort` 0 means "the port the listener bound" (BrokerConfig has no separate flag for
 * it); `advertisedHost` '' means "the listener host", or this machine's name when the listener is
 * a wildcard address, which no client can connect to.
 */
export const ADVERTISED_PORT_FOLLOWS_BOUND = 0;
export const ADVERTISED_HOST_FOLLOWS_LISTENER = '';

export interface BrokerNodeOptions {
  config: BrokerConfig;
  logger?: Logger;
  clock?: Clock;
  shutdownGraceMs?: number;
}

export interface BrokerNode {
  /** The config the broker runs with: bound port and advertised address resolved. */
  readonly config: BrokerConfig;
  /** The address the listener bound (the port is the real one when 0 was asked for). */
  readonly host: string;
  readonly port: number;
  readonly connections: ConnectionServer;
  /** Stops the node (see the top of this file). Idempotent: every call returns the same promise. */
  stop(): Promise<void>;
  /** Settles when stop() has finished. */
  readonly stopped: Promise<void>;
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]';
}

/** The advertised address for a listener bound at `boundPort`. */
export function resolveAdvertised(config: BrokerConfig, boundPort: number): { advertisedHost: string; advertisedPort: number } {
  const advertisedHost = config.advertisedHost !== ADVERTISED_HOST_FOLLOWS_LISTENER ? config.advertisedHost : isWildcard(config.host) ? hostname() : config.host;
  const advertisedPort = config.advertisedPort !== ADVERTISED_PORT_FOLLOWS_BOUND ? config.advertisedPort : boundPort;
  return { advertisedHost, advertisedPort };
}

function hostPort(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Hands requests to the broker once it exists. Until then they wait (the connection bounds still
 * apply); if the broker never starts they are refused, on connections that are being closed.
 */
class BrokerGate implements FrameHandler {
  private broker: Broker | null = null;
  private readonly ready: Promise<Broker>;
  private openGate: (broker: Broker) => void = () => undefined;
  private failGate: (error: Error) => void = () => undefined;

  constructor() {
    this.ready = new Promise<Broker>((resolve, reject) => {
      this.openGate = resolve;
      this.failGate = reject;
    });
    // Nothing may wait at all; a failed start is reported by startBrokerNode, not here.
    this.ready.catch(() => undefined);
  }

  open(broker: Broker): void {
    this.broker = broker;
    this.openGate(broker);
  }

  fail(error: Error): void {
    this.failGate(error);
  }

  handleFrame(frame: Buffer, context: RequestContext): Promise<BrokerResponse | null> {
    if (this.broker !== null) return this.broker.handleFrame(frame, context);
    return this.ready.then((broker) => broker.handleFrame(frame, context));
  }
}

export async function startBrokerNode(options: BrokerNodeOptions): Promise<BrokerNode> {
  const logger = options.logger ?? streamLogger();
  const graceMs = options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
  if (!Number.isSafeInteger(graceMs) || graceMs < 0 || graceMs > MAX_SHUTDOWN_GRACE_MS) {
    throw new RangeError(`shutdownGraceMs must be an integer in [0, ${MAX_SHUTDOWN_GRACE_MS}], got ${graceMs}`);
  }
  const requested = options.config;
  const store = await EmbeddedMetadataStore.open({ dataDir: requested.dataDir, logger });
  const gate = new BrokerGate();
  let connections: ConnectionServer;
  let bound: { host: string; port: number };
  try {
    connections = new ConnectionServer({
      handler: gate,
      isMalformed: (error) => error instanceof MalformedRequestError,
      logger,
      socketRequestMaxBytes: requested.socketRequestMaxBytes,
      maxInFlightRequestsPerConnection: requested.maxInFlightRequestsPerConnection,
      maxQueuedResponseBytesPerConnection: requested.maxQueuedResponseBytesPerConnection,
      maxConnections: requested.maxConnections,
    });
    bound = await connections.listen(requested.host, requested.port);
  } catch (error) {
    await store.close();
    throw error;
  }

  const config: BrokerConfig = { ...requested, port: bound.port, ...resolveAdvertised(requested, bound.port) };
  let broker: Broker;
  try {
    broker = await Broker.start({ config, metadataStore: store, logger, ...(options.clock === undefined ? {} : { clock: options.clock }) });
  } catch (error) {
    const reason = error instanceof Error ? error : new Error(String(error));
    await connections.close({ graceMs: 0 });
    gate.fail(new Error(`the broker failed to start: ${reason.message}`));
    await store.close();
    throw error;
  }
  gate.open(broker);

  const listener = hostPort(bound.host, bound.port);
  const advertisedListener = hostPort(config.advertisedHost, config.advertisedPort);
  logger.info('broker started', { nodeId: config.nodeId, listener, advertisedListener, dataDir: config.dataDir });

  let stopping: Promise<void> | null = null;
  let markStopped: () => void = () => undefined;
  let markStopFailed: (error: unknown) => void = () => undefined;
  const stopped = new Promise<void>((resolve, reject) => {
    markStopped = resolve;
    markStopFailed = reject;
  });
  // Whoever awaits `stopped` sees a failure; stop() itself reports it to its own caller.
  stopped.catch(() => undefined);

  const stopOnce = async (): Promise<void> => {
    const startedAtMs = Date.now();
    let failure: unknown = null;
    // Waiting requests (group joins, long polls) answer now instead of holding the grace period.
    broker.beginShutdown();
    await connections.close({ graceMs });
    try {
      await broker.shutdown();
    } catch (error) {
      failure = error;
    }
    try {
      await store.close();
    } catch (error) {
      failure ??= error;
    }
    if (failure !== null) {
      logger.error('broker stopped with an error', { nodeId: config.nodeId, error: failure instanceof Error ? (failure.stack ?? failure.message) : String(failure) });
      throw failure;
    }
    logger.info('broker stopped', { nodeId: config.nodeId, tookMs: Date.now() - startedAtMs });
  };

  return {
    config,
    host: bound.host,
    port: bound.port,
    connections,
    stopped,
    stop(): Promise<void> {
      stopping ??= stopOnce().then(markStopped, (error: unknown) => {
        markStopFailed(error);
        throw error;
      });
      return stopping;
    },
  };
}

export interface SignalHandlerOptions {
  logger?: Logger;
  /** process.exit unless a test passes its own. */
  exit?: (code: number) => void;
  signals?: readonly NodeJS.Signals[];
}

/**
 * SIGINT/SIGTERM: the first stops the node gracefully and exits 0 (1 if stopping failed); a
 * second one exits at once with 1. Returns a function that removes the handlers.
 */
export function installSignalHandlers(node: BrokerNode, options: SignalHandlerOptions = {}): () => void {
  const logger = options.logger ?? streamLogger();
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const signals = options.signals ?? (['SIGINT', 'SIGTERM'] as const);
  let received = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    received++;
    if (received > 1) {
      logger.warn('second signal: exiting without finishing the stop', { signal });
      exit(1);
      return;
    }
    logger.info('signal received: stopping (send it again to exit at once)', { signal });
    void node.stop().then(
      () => exit(0),
      () => exit(1), // stop() logged the error
    );
  };
  for (const signal of signals) process.on(signal, onSignal);
  return () => {
    for (const signal of signals) process.off(signal, onSignal);
  };
}
