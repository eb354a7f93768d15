// A broker inside the caller's process, for tests and scripts: `import { startBroker } from
// 'tidelog/broker'`. It is the same broker node `tidelog broker start` runs (embedded metadata
// store, TCP listener, log recovery, clean stop), with defaults for a throwaway broker: a fresh
// temporary data directory removed at stop, a port the OS picks, no rebalance delay, no log
// lines unless asked. Several in one process do not interfere: each has its own directory,
// listener and worker threads, and none installs signal handlers.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brokerConfigFromProperties, defaultBrokerConfig, type BrokerConfig } from '../engine/brokerConfig.js';
import { ConfigError } from '../engine/errors.js';
import { silentLogger, streamLogger, type Logger } from '../engine/logger.js';
import { ADVERTISED_HOST_FOLLOWS_LISTENER, ADVERTISED_PORT_FOLLOWS_BOUND, startBrokerNode } from './brokerNode.js';

export interface StartBrokerOptions {
  /** Where the logs and metadata go; default: a new temporary directory, removed by stop(). */
  dataDir?: string;
  /** Listener address; default 127.0.0.1. */
  host?: string;
  /** Listener port; default 0 (the OS picks a free one: read it from the result). */
  port?: number;
  /**
   * Broker configs by Kafka's names, as in server.properties (`num.partitions`,
   * `auto.create.topics.enable`, `log.segment.bytes`, ...). An unknown name is an error here,
   * unlike the CLI, which logs and ignores it: a test should not silently run without its config.
   */
  configs?: Readonly<Record<string, string | number | boolean>>;
  /** Log lines: 'silent' (default), 'stderr', or a Logger of your own. */
  logger?: 'silent' | 'stderr' | Logger;
}

export interface EmbeddedBroker {
  /** `host:port`, for any Kafka client's bootstrap servers. */
  readonly bootstrapServers: string;
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  /** Stops the broker (in-flight requests finish, logs flushed) and removes a temporary data directory. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Development defaults Kafka users set by hand for tests: a group's first member does not wait
 * 3 s for others (group.initial.rebalance.delay.ms), and the broker's own stop waits at most a
 * second for in-flight requests.
 */
const EMBEDDED_DEFAULTS: Readonly<Record<string, string>> = { 'group.initial.rebalance.delay.ms': '0' };
const EMBEDDED_SHUTDOWN_GRACE_MS = 1_000;

export async function startBroker(options: StartBrokerOptions = {}): Promise<EmbeddedBroker> {
  const temporary = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'tidelog-embedded-')));
  try {
    const properties: Record<string, string> = { ...EMBEDDED_DEFAULTS };
    for (const [key, value] of Object.entries(options.configs ?? {})) properties[key] = String(value);
    // Advertise what the listener really bound (the OS picks the port).
    const base: BrokerConfig = { ...defaultBrokerConfig(), dataDir, host: options.host ?? '127.0.0.1', port: options.port ?? 0, advertisedHost: ADVERTISED_HOST_FOLLOWS_LISTENER, advertisedPort: ADVERTISED_PORT_FOLLOWS_BOUND };
    const { config, unknownKeys } = brokerConfigFromProperties(properties, base);
    if (unknownKeys.length > 0) throw new ConfigError(`unknown broker config ${unknownKeys.join(', ')}`);
    const logger = options.logger === undefined || options.logger === 'silent' ? silentLogger : options.logger === 'stderr' ? streamLogger() : options.logger;
    const node = await startBrokerNode({ config: { ...config, dataDir }, logger, shutdownGraceMs: EMBEDDED_SHUTDOWN_GRACE_MS });
    let stopping: Promise<void> | null = null;
    return {
      bootstrapServers: `${node.config.advertisedHost}:${node.config.advertisedPort}`,
      host: node.host,
      port: node.port,
      dataDir,
      stop(): Promise<void> {
        stopping ??= (async () => {
          try {
            await node.stop();
          } finally {
            if (temporary) await rm(dataDir, { recursive: true, force: true });
          }
        })();
        return stopping;
      },
    };
  } catch (error) {
    if (temporary) await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
}
