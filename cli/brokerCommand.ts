// `tidelog broker start [--host 127.0.0.1] [--port 9092] [--data-dir ./data] [--node-id 0]
//   [--advertised-listener host:port] [--config key=value]... [--config-file path]`
//
// Config keys are Kafka's broker config names (engine/brokerConfig.ts). Precedence, lowest first:
// --config-file, then each --config, then the dedicated flags. Unknown keys are ignored with one
// warning line each. A bad value, a malformed --config or an unreadable --config-file exits 2 with
// one line. The broker runs until SIGINT/SIGTERM (server/brokerNode.ts installSignalHandlers):
// the first stops it gracefully and exits 0, a second exits 1 at once.
import { readFile } from 'node:fs/promises';
import type { Argv, CommandModule } from 'yargs';
import { ADVERTISED_HOST_FOLLOWS_LISTENER, ADVERTISED_PORT_FOLLOWS_BOUND, installSignalHandlers, startBrokerNode, type BrokerNode } from '../server/brokerNode.js';
import { brokerConfigFromProperties, defaultBrokerConfig, parseProperties, type BrokerConfig } from '../engine/brokerConfig.js';
import { ConfigError } from '../engine/errors.js';
import { descriptorExhaustionError } from '../engine/fileDescriptors.js';
import { streamLogger, type Logger } from '../engine/logger.js';
import { EXIT_FAILURE, EXIT_USAGE, type CommandOutcome } from './plumbing.js';
import { INT32_MAX } from '../common/limits.js';

const MAX_TCP_PORT = 65_535;
const MAX_NODE_ID = INT32_MAX;
/** A --config-file larger than this is not a properties file. */
const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

interface StartArguments {
  host: string | undefined;
  port: number | undefined;
  'data-dir': string | undefined;
  'node-id': number | undefined;
  'advertised-listener': string | undefined;
  config: string[] | undefined;
  'config-file': string | undefined;
}

/** The flags that set one BrokerConfig field each; undefined when not given. */
export interface BrokerFlags {
  host?: string | undefined;
  port?: number | undefined;
  dataDir?: string | undefined;
  nodeId?: number | undefined;
  advertisedListener?: string | undefined;
}

/** `host:port`, `[ipv6]:port`, optionally behind `PLAINTEXT://` as Kafka writes listeners. */
export function parseListener(value: string, flag: string): { host: string; port: number } {
  const text = value.trim().replace(/^PLAINTEXT:\/\//i, '');
  const match = /^(\[[^\]]+\]|[^:[\]]+):(\d+)$/.exec(text);
  const port = match === null ? NaN : Number(match[2]);
  if (match === null || !Number.isInteger(port) || port < 1 || port > MAX_TCP_PORT) {
    throw new ConfigError(`${flag} must be host:port with a port in [1, ${MAX_TCP_PORT}], got ${JSON.stringify(value)}`);
  }
  const host = match[1]!.startsWith('[') ? match[1]!.slice(1, -1) : match[1]!;
  return { host, port };
}

/** `key=value` pairs of --config into a properties map. */
export function parseConfigPairs(pairs: readonly string[]): Record<string, string> {
  const properties: Record<string, string> = {};
  for (const pair of pairs) {
    const separator = pair.indexOf('=');
    if (separator <= 0) throw new ConfigError(`--config expects key=value, got ${JSON.stringify(pair)}`);
    properties[pair.slice(0, separator).trim()] = pair.slice(separator + 1);
  }
  return properties;
}

/**
 * The broker config from the three sources, in precedence order (file < --config < flags). Each
 * source is applied over the previous one, so an alias in a lower source (log.dirs / log.dir,
 * broker.id / node.id) can never override a higher one. Throws ConfigError on a bad value.
 */
export function resolveBrokerConfig(sources: { fileProperties: Record<string, string>; configProperties: Record<string, string>; flags: BrokerFlags }): { config: BrokerConfig; unknownKeys: Array<{ key: string; source: string }> } {
  const unknownKeys: Array<{ key: string; source: string }> = [];
  const fromFile = brokerConfigFromProperties(sources.fileProperties, defaultBrokerConfig());
  unknownKeys.push(...fromFile.unknownKeys.map((key) => ({ key, source: '--config-file' })));
  const fromConfig = brokerConfigFromProperties(sources.configProperties, fromFile.config);
  unknownKeys.push(...fromConfig.unknownKeys.map((key) => ({ key, source: '--config' })));
  const config: BrokerConfig = { ...fromConfig.config };

  const { flags } = sources;
  if (flags.host !== undefined) {
    if (flags.host.trim().length === 0) throw new ConfigError('--host must not be empty');
    config.host = flags.host.trim();
  }
  if (flags.port !== undefined) {
    if (!Number.isInteger(flags.port) || flags.port < 0 || flags.port > MAX_TCP_PORT) throw new ConfigError(`--port must be an integer in [0, ${MAX_TCP_PORT}], got ${flags.port}`);
    config.port = flags.port;
  }
  if (flags.dataDir !== undefined) {
    if (flags.dataDir.length === 0) throw new ConfigError('--data-dir must not be empty');
    config.dataDir = flags.dataDir;
  }
  if (flags.nodeId !== undefined) {
    if (!Number.isInteger(flags.nodeId) || flags.nodeId < 0 || flags.nodeId > MAX_NODE_ID) throw new ConfigError(`--node-id must be an integer in [0, ${MAX_NODE_ID}], got ${flags.nodeId}`);
    config.nodeId = flags.nodeId;
  }
  if (flags.advertisedListener !== undefined) {
    const advertised = parseListener(flags.advertisedListener, '--advertised-listener');
    config.advertisedHost = advertised.host;
    config.advertisedPort = advertised.port;
  } else {
    // Follow the listener: the bound port (also when --port 0) and the listener's host.
    config.advertisedHost = ADVERTISED_HOST_FOLLOWS_LISTENER;
    config.advertisedPort = ADVERTISED_PORT_FOLLOWS_BOUND;
  }
  return { config, unknownKeys };
}

async function readConfigFile(path: string): Promise<Record<string, string>> {
  let text: string;
  try {
    const handle = await readFile(path);
    if (handle.length > MAX_CONFIG_FILE_BYTES) throw new ConfigError(`--config-file ${path} is ${handle.length} bytes; a properties file is at most ${MAX_CONFIG_FILE_BYTES}`);
    text = handle.toString('utf8');
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`--config-file ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  try {
    return parseProperties(text);
  } catch (error) {
    throw new ConfigError(`--config-file ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

async function configFromArguments(args: StartArguments, logger: Logger): Promise<BrokerConfig> {
  const fileProperties = args['config-file'] === undefined ? {} : await readConfigFile(args['config-file']);
  const configProperties = parseConfigPairs(args.config ?? []);
  const { config, unknownKeys } = resolveBrokerConfig({
    fileProperties,
    configProperties,
    flags: { host: args.host, port: args.port, dataDir: args['data-dir'], nodeId: args['node-id'], advertisedListener: args['advertised-listener'] },
  });
  for (const { key, source } of unknownKeys) logger.warn('unknown config key ignored', { key, source });
  return config;
}

export function brokerCommand(outcome: CommandOutcome): CommandModule<object, object> {
  return {
    command: 'broker',
    describe: 'run a broker',
    builder: (argv: Argv<object>): Argv<object> => argv.command(startCommand(outcome)).demandCommand(1, 'name a broker command: start'),
    // Never runs: demandCommand sends `broker` alone to the usage error.
    handler: () => undefined,
  };
}

function startCommand(outcome: CommandOutcome): CommandModule<object, StartArguments> {
  const defaults = defaultBrokerConfig();
  return {
    command: 'start',
    describe: 'start a single broker with an embedded metadata store; runs until SIGINT/SIGTERM',
    // No yargs defaults: a default would always win over --config and --config-file.
    builder: (argv: Argv<object>): Argv<StartArguments> =>
      argv
        .option('host', { type: 'string', describe: `address to listen on (default ${defaults.host})` })
        .option('port', { type: 'number', describe: `port to listen on, 0 for any free port (default ${defaults.port})` })
        .option('data-dir', { type: 'string', describe: `data directory (default ${defaults.dataDir}; also log.dir/log.dirs)` })
        .option('node-id', { type: 'number', describe: `this broker's node id (default ${defaults.nodeId}; also node.id)` })
        .option('advertised-listener', { type: 'string', describe: 'host:port clients are told to connect to (default: the listener, with the bound port)' })
        .option('config', { type: 'string', array: true, describe: 'a Kafka broker config, key=value; repeatable; wins over --config-file' })
        .option('config-file', { type: 'string', describe: 'a server.properties file of Kafka broker configs' }),
    handler: async (args) => {
      const logger = streamLogger();
      let config: BrokerConfig;
      try {
        config = await configFromArguments(args, logger);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        process.stderr.write(`tidelog broker start: ${error.message}\n`);
        outcome.exitCode = EXIT_USAGE;
        return;
      }
      let node: BrokerNode;
      try {
        node = await startBrokerNode({ config, logger });
      } catch (error) {
        // Out of descriptors (many partitions under a low ulimit -n) is named with the limit.
        const reported = descriptorExhaustionError(error, 'starting the broker') ?? error;
        process.stderr.write(`tidelog broker start: ${reported instanceof Error ? reported.message : String(reported)}\n`);
        outcome.exitCode = error instanceof ConfigError ? EXIT_USAGE : EXIT_FAILURE;
        return;
      }
      // From here the process ends through the signal handlers (exit 0 after a graceful stop).
      installSignalHandlers(node, { logger });
      await node.stopped.catch(() => {
        outcome.exitCode = EXIT_FAILURE;
      });
    },
  };
}
