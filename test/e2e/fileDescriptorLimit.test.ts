// Issue 18, bad input: a broker process under a low open-files limit (prlimit --nofile, util-linux).
// Running out of descriptors must be an answer or a message that names the limit, never a crash:
// a CreateTopics too large for the limit is refused with KAFKA_STORAGE_ERROR naming it, and the
// broker goes on serving the topics it has; while no descriptor is free the connections it holds
// are served, and new ones once descriptors are back; and a broker holds and writes more
// partitions than its limit allows files, since write handles are capped (log.write.handles.max).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { BrokerProcess, createTopic, kafkaFor, runTidelog, withRawClient } from '../support/brokerProcess.js';

const HAS_PRLIMIT = existsSync('/proc/self/limits') && spawnSync('prlimit', ['--version']).status === 0;
/** Enough for Node to load the CLI (about 150 at once) and a few topics, far from a thousand partitions. */
const LOW_LIMIT = 400;
const CLI_TIMEOUT_MS = 60_000;

const brokers: BrokerProcess[] = [];
afterEach(async () => {
  for (const broker of brokers.splice(0)) await broker.cleanup();
});

async function startBroker(openFilesLimit: number, configs: Record<string, string> = {}): Promise<BrokerProcess> {
  const broker = await BrokerProcess.start({ openFilesLimit, configs: { 'group.initial.rebalance.delay.ms': '0', ...configs } });
  brokers.push(broker);
  return broker;
}

async function produceOne(broker: BrokerProcess, topic: string, value: string): Promise<void> {
  const producer = kafkaFor(broker).producer();
  await producer.connect();
  try {
    const [result] = await producer.send({ topic, messages: [{ value }], acks: -1 });
    expect(result?.errorCode).toBe(0);
  } finally {
    await producer.disconnect();
  }
}

function setOpenFilesLimit(pid: number, soft: number, hard: number): void {
  const result = spawnSync('prlimit', ['--pid', String(pid), `--nofile=${soft}:${hard}`]);
  expect(result.status, result.stderr.toString()).toBe(0);
}

describe.skipIf(!HAS_PRLIMIT)('a broker out of file descriptors', () => {
  it('refuses a CreateTopics past its open-files limit naming the limit, and keeps serving', { timeout: 120_000 }, async () => {
    // Write handles allowed past what the process may open (the default is half its limit), so
    // 1,000 new partitions would need more descriptors than it has.
    const broker = await startBroker(LOW_LIMIT, { 'log.write.handles.max': '100000' });
    await createTopic(broker, 'existing', 1);
    await produceOne(broker, 'existing', 'before');

    const refused = await runTidelog(['topics', 'create', 'huge', '--partitions', '1000', '--bootstrap-server', broker.address], { timeoutMs: CLI_TIMEOUT_MS });
    expect(refused.code, refused.stderr).not.toBe(0);
    expect(refused.stderr).toContain('topic huge: KAFKA_STORAGE_ERROR');
    expect(refused.stderr).toContain(`the process limit is ${LOW_LIMIT} open files (ulimit -n; hard limit ${LOW_LIMIT})`);
    expect(refused.stderr).toContain('log.write.handles.max');

    // A topic that fits is still created; the refused one left nothing.
    await createTopic(broker, 'fits', 50);
    const topics = (await withRawClient(broker, (client) => client.metadata(null))).topics.map((topic) => [topic.name, topic.partitions.length]);
    expect(topics).toContainEqual(['existing', 1]);
    expect(topics).toContainEqual(['fits', 50]);
    expect(topics.map(([name]) => name)).not.toContain('huge');
    expect(readdirSync(broker.dataDir).filter((entry) => entry.startsWith('huge'))).toEqual([]);
    await produceOne(broker, 'existing', 'after');
    expect(broker.isAlive()).toBe(true);
    await broker.stop();
  });

  it('survives accept() without descriptors: connections it holds are served meanwhile, and new ones once descriptors are back', { timeout: 120_000 }, async () => {
    const broker = await startBroker(LOW_LIMIT);
    await createTopic(broker, 'existing', 1);
    await withRawClient(broker, async (connected) => {
      // Descriptors 0-9 are all taken (stdio, the event loop, the lock files...): nothing new fits.
      setOpenFilesLimit(broker.pid, 10, LOW_LIMIT);
      try {
        // The kernel completes the handshake; the broker cannot accept it. What becomes of that
        // connection is libuv's (it retries the accept while the listening socket stays readable,
        // or drops it through its reserve descriptor), so only its effect on the broker is judged.
        const waiting = withRawClient(broker, async (client) => (await client.metadata(['existing'])).topics[0]!.errorCode);
        waiting.catch(() => undefined);
        // A connection accepted before is served meanwhile.
        expect((await connected.metadata(['existing'])).topics[0]?.errorCode).toBe(0);
        expect(broker.isAlive()).toBe(true);
      } finally {
        setOpenFilesLimit(broker.pid, LOW_LIMIT, LOW_LIMIT);
      }
      // Descriptors are back: a new connection is accepted and served, and so is the old one.
      expect(await withRawClient(broker, async (client) => (await client.metadata(['existing'])).topics[0]!.errorCode)).toBe(0);
      expect((await connected.metadata(['existing'])).topics[0]?.errorCode).toBe(0);
    });
    expect(broker.runLines().filter((line) => / ERROR /.test(line) && !line.includes('out of file descriptors'))).toEqual([]);
    await produceOne(broker, 'existing', 'after');
    await broker.stop();
  });

  it('holds and writes more partitions than its open-files limit, with segment handles capped by log.write.handles.max and log.read.handles.max, through a restart', { timeout: 180_000 }, async () => {
    const writeHandles = 32;
    const readHandles = 64;
    const partitions = 1000;
    const configs = { 'log.write.handles.max': String(writeHandles), 'log.read.handles.max': String(readHandles) };
    const broker = await BrokerProcess.start({ openFilesLimit: LOW_LIMIT, configs });
    brokers.push(broker);
    await createTopic(broker, 'many', partitions);
    const producer = kafkaFor(broker).producer();
    await producer.connect();
    const sendToEvery = async (value: string): Promise<void> => {
      const results = await producer.send({ topic: 'many', acks: -1, messages: Array.from({ length: partitions }, (_, partition) => ({ partition, value })) });
      expect(results.filter((result) => result.errorCode !== 0)).toEqual([]);
      expect(results).toHaveLength(partitions);
    };
    try {
      await sendToEvery('first');
      // Every partition wrote, yet the segment files held open stay within the two handle caps.
      const openLogs = readdirSync(`/proc/${broker.pid}/fd`).filter((fd) => {
        try {
          return readlinkSync(`/proc/${broker.pid}/fd/${fd}`).endsWith('.log');
        } catch {
          return false; // closed while listed
        }
      });
      expect(openLogs.length).toBeLessThanOrEqual(writeHandles + readHandles);
      expect(openLogs.length).toBeLessThan(partitions);
    } finally {
      await producer.disconnect();
    }
    await broker.stop();

    // The same limits again: the start opens no segment for writing, and every partition takes more.
    await broker.restart();
    const again = kafkaFor(broker).producer();
    await again.connect();
    try {
      const results = await again.send({ topic: 'many', acks: -1, messages: Array.from({ length: partitions }, (_, partition) => ({ partition, value: 'second' })) });
      expect(results.map((result) => Number(result.baseOffset))).toEqual(Array.from({ length: partitions }, () => 1));
    } finally {
      await again.disconnect();
    }
    expect(broker.runLines().filter((line) => / ERROR /.test(line))).toEqual([]);
    await broker.stop();
  });
});
