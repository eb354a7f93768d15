// `tidelog topics create|list|describe|delete|alter-config` over the bundled admin client
// (client/admin.ts). Every subcommand takes --bootstrap-server host:port (default 127.0.0.1:9092)
// and --timeout-ms (bounds the whole call). Exit codes: 0 success, 1 a failed request (the broker
// down, an unknown topic, a refused config), 2 bad usage (one line on stderr).
import type { Argv, CommandModule } from 'yargs';
import { createAdmin, type Admin, type TopicDescription } from '../client/index.js';
import { CliUsageError, bootstrapServers, checkTimeout, integerFlag, parsePairs, runHandler, withConnectionOptions, type CommandOutcome, type ConnectionArguments } from './plumbing.js';

const MAX_PARTITIONS = 100_000;

async function withAdmin<T>(args: ConnectionArguments, use: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = createAdmin({ bootstrapServers: bootstrapServers(args['bootstrap-server']), clientId: 'tidelog-cli', requestTimeoutMs: checkTimeout(args['timeout-ms']) });
  try {
    return await use(admin);
  } finally {
    await admin.close().catch(() => undefined);
  }
}

interface TopicArgument extends ConnectionArguments {
  topic: string;
}
interface CreateArguments extends TopicArgument {
  partitions: number | undefined;
  'replication-factor': number | undefined;
  config: string[] | undefined;
}
interface JsonArgument extends ConnectionArguments {
  json: boolean;
}
interface DescribeArguments extends TopicArgument {
  json: boolean;
}
interface AlterArguments extends TopicArgument {
  set: string[] | undefined;
  delete: string[] | undefined;
}

function topicPositional<T>(argv: Argv<T>): Argv<T & { topic: string }> {
  return argv.positional('topic', { type: 'string', demandOption: true, describe: 'the topic name' }) as Argv<T & { topic: string }>;
}

export function topicsCommand(outcome: CommandOutcome): CommandModule<object, object> {
  return {
    command: 'topics',
    describe: 'create, list, describe, delete topics and alter their configs',
    builder: (argv: Argv<object>): Argv<object> =>
      argv
        .command(createCommand(outcome))
        .command(listCommand(outcome))
        .command(describeCommand(outcome))
        .command(deleteCommand(outcome))
        .command(alterConfigCommand(outcome))
        .demandCommand(1, 'name a topics command: create, list, describe, delete, alter-config'),
    handler: () => undefined,
  };
}

function createCommand(outcome: CommandOutcome): CommandModule<object, CreateArguments> {
  return {
    command: 'create <topic>',
    describe: 'create a topic and wait until every partition has a leader',
    builder: (argv: Argv<object>): Argv<CreateArguments> =>
      withConnectionOptions(topicPositional(argv))
        .option('partitions', { type: 'number', describe: 'number of partitions (default: the broker\'s num.partitions)' })
        .option('replication-factor', { type: 'number', describe: 'replication factor (default: the broker\'s)' })
        .option('config', { type: 'string', array: true, describe: 'a topic config, key=value; repeatable' }) as Argv<CreateArguments>,
    handler: (args) =>
      runHandler(outcome, 'topics create', async () => {
        const partitions = integerFlag('partitions', args.partitions, 1, MAX_PARTITIONS);
        const replicationFactor = integerFlag('replication-factor', args['replication-factor'], 1, 32_767);
        const configs = parsePairs('config', args.config ?? []);
        await withAdmin(args, (admin) =>
          admin.createTopics([{ topic: args.topic, ...(partitions !== undefined ? { partitions } : {}), ...(replicationFactor !== undefined ? { replicationFactor } : {}), configs }]),
        );
        process.stdout.write(`created topic ${args.topic}\n`);
      }),
  };
}

function listCommand(outcome: CommandOutcome): CommandModule<object, JsonArgument> {
  return {
    command: 'list',
    describe: 'list the topics, one per line (or a JSON array with --json)',
    builder: (argv: Argv<object>): Argv<JsonArgument> => withConnectionOptions(argv).option('json', { type: 'boolean', default: false, describe: 'print a JSON array' }) as Argv<JsonArgument>,
    handler: (args) =>
      runHandler(outcome, 'topics list', async () => {
        const topics = await withAdmin(args, (admin) => admin.listTopics());
        process.stdout.write(args.json ? `${JSON.stringify(topics)}\n` : topics.map((topic) => `${topic}\n`).join(''));
      }),
  };
}

/** The JSON form of a topic description (configs as name -> value; details under configDetails). */
export function describeJson(description: TopicDescription): object {
  return {
    name: description.name,
    topicId: description.topicId,
    isInternal: description.isInternal,
    partitions: description.partitions.map((p) => ({ partition: p.partition, leader: p.leader, replicas: p.replicas, isr: p.isr, ...(p.error !== '' && p.error !== 'NONE' ? { error: p.error } : {}) })),
    configs: Object.fromEntries(Object.entries(description.configs).map(([name, entry]) => [name, entry.value])),
    configDetails: description.configs,
  };
}

function describeText(description: TopicDescription): string {
  const lines = [`Topic: ${description.name}\tTopicId: ${description.topicId ?? '-'}\tPartitionCount: ${description.partitions.length}`];
  const overrides = Object.entries(description.configs).filter(([, entry]) => !entry.isDefault);
  lines.push(`Configs: ${overrides.map(([name, entry]) => `${name}=${entry.isSensitive ? '(sensitive)' : entry.value ?? ''}`).join(',')}`);
  for (const p of description.partitions) {
    lines.push(`\tPartition: ${p.partition}\tLeader: ${p.leader}\tReplicas: ${p.replicas.join(',')}\tIsr: ${p.isr.join(',')}${p.error !== '' && p.error !== 'NONE' ? `\tError: ${p.error}` : ''}`);
  }
  return lines.join('\n') + '\n';
}

function describeCommand(outcome: CommandOutcome): CommandModule<object, DescribeArguments> {
  return {
    command: 'describe <topic>',
    describe: 'show a topic\'s partitions (leader, replicas, isr) and configs',
    builder: (argv: Argv<object>): Argv<DescribeArguments> =>
      withConnectionOptions(topicPositional(argv)).option('json', { type: 'boolean', default: false, describe: 'print JSON (every config, with its source)' }) as Argv<DescribeArguments>,
    handler: (args) =>
      runHandler(outcome, 'topics describe', async () => {
        const [description] = await withAdmin(args, (admin) => admin.describeTopics([args.topic]));
        if (description === undefined) throw new Error(`topic ${args.topic} was not described`);
        process.stdout.write(args.json ? `${JSON.stringify(describeJson(description))}\n` : describeText(description));
      }),
  };
}

function deleteCommand(outcome: CommandOutcome): CommandModule<object, TopicArgument> {
  return {
    command: 'delete <topic>',
    describe: 'delete a topic',
    builder: (argv: Argv<object>): Argv<TopicArgument> => withConnectionOptions(topicPositional(argv)) as Argv<TopicArgument>,
    handler: (args) =>
      runHandler(outcome, 'topics delete', async () => {
        await withAdmin(args, (admin) => admin.deleteTopics([args.topic]));
        process.stdout.write(`deleted topic ${args.topic}\n`);
      }),
  };
}

function alterConfigCommand(outcome: CommandOutcome): CommandModule<object, AlterArguments> {
  return {
    command: 'alter-config <topic>',
    describe: 'set and delete topic configs (incremental: other configs are kept)',
    builder: (argv: Argv<object>): Argv<AlterArguments> =>
      withConnectionOptions(topicPositional(argv))
        .option('set', { type: 'string', array: true, describe: 'a config to set, key=value; repeatable' })
        .option('delete', { type: 'string', array: true, describe: 'a config to delete (back to the default); repeatable' }) as Argv<AlterArguments>,
    handler: (args) =>
      runHandler(outcome, 'topics alter-config', async () => {
        const set = parsePairs('set', args.set ?? []);
        const remove = (args.delete ?? []).map((key) => key.trim());
        if (Object.keys(set).length === 0 && remove.length === 0) throw new CliUsageError('give at least one --set key=value or --delete key');
        if (remove.some((key) => key.length === 0)) throw new CliUsageError('--delete expects a config name');
        const both = remove.filter((key) => key in set);
        if (both.length > 0) throw new CliUsageError(`config ${both[0]} is both set and deleted`);
        await withAdmin(args, (admin) => admin.alterConfigs(args.topic, { set, delete: remove }));
        process.stdout.write(`altered configs of topic ${args.topic}\n`);
      }),
  };
}
