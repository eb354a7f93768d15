// A kafkajs 2.2.4 consumer group member in a process of its own, for tests that SIGKILL a member.
// One argument, JSON: { brokers, groupId, topic, clientId, sessionTimeoutMs, heartbeatIntervalMs,
// rebalanceTimeoutMs, maxWaitTimeMs, commitEvery }.
//
// It prints one JSON object per line on stdout (pipes are written synchronously on Linux, so a
// line that was written survives a SIGKILL):
//   {"type":"join","memberId":..,"generationId":..,"assignment":{"topic":[partitions]}}
//   {"type":"record","partition":..,"offset":..,"value":..}      printed BEFORE its offset is committed
//   {"type":"commit","offsets":[{"partition":..,"offset":..}]}   after the broker acknowledged it
//   {"type":"commit-failed","error":..}                          the offsets stay pending
//   {"type":"crash","error":..}
// Offsets are committed by hand (autoCommit off) after every `commitEvery` records, so at most
// `commitEvery` printed records are uncommitted at any moment: the window a kill can duplicate.
// kafkajs's GROUP_JOIN payload has no generation id; it is taken from kafkajs's own debug log
// "Received assignment", which the same join logs just before GROUP_JOIN.
import { createRequire } from 'node:module';

const { Kafka, logLevel } = createRequire(import.meta.url)('kafkajs');

const options = JSON.parse(process.argv[2] ?? '{}');
for (const key of ['brokers', 'groupId', 'topic', 'clientId', 'sessionTimeoutMs', 'heartbeatIntervalMs', 'rebalanceTimeoutMs', 'maxWaitTimeMs', 'commitEvery']) {
  if (options[key] === undefined) {
    process.stderr.write(`groupMemberChild: missing option ${key}\n`);
    process.exit(2);
  }
}

function emit(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

let receivedGenerationId = -1;
const kafka = new Kafka({
  clientId: options.clientId,
  brokers: options.brokers,
  connectionTimeout: 5_000,
  requestTimeout: 10_000,
  retry: { retries: 5, initialRetryTime: 50, maxRetryTime: 1_000 },
  logLevel: logLevel.DEBUG,
  logCreator: () => (entry) => {
    if (entry.log.message === 'Received assignment') receivedGenerationId = entry.log.generationId;
  },
});

const consumer = kafka.consumer({
  groupId: options.groupId,
  sessionTimeout: options.sessionTimeoutMs,
  rebalanceTimeout: options.rebalanceTimeoutMs,
  heartbeatInterval: options.heartbeatIntervalMs,
  maxWaitTimeInMs: options.maxWaitTimeMs,
  retry: { retries: 5, initialRetryTime: 50, maxRetryTime: 1_000 },
});

/** partition -> next offset to commit, for partitions of the current assignment only. */
let pending = new Map();
let owned = new Set();
let sinceCommit = 0;

consumer.on(consumer.events.GROUP_JOIN, (event) => {
  const partitions = event.payload.memberAssignment[options.topic] ?? [];
  owned = new Set(partitions);
  // Offsets of partitions this member lost must not be committed in the new generation.
  pending = new Map([...pending].filter(([partition]) => owned.has(partition)));
  emit({ type: 'join', memberId: event.payload.memberId, generationId: receivedGenerationId, assignment: event.payload.memberAssignment });
});
consumer.on(consumer.events.CRASH, (event) => emit({ type: 'crash', error: String(event.payload.error) }));

await consumer.connect();
await consumer.subscribe({ topic: options.topic, fromBeginning: true });
await consumer.run({
  autoCommit: false,
  eachMessage: async ({ partition, message }) => {
    emit({ type: 'record', partition, offset: Number(message.offset), value: message.value?.toString('utf8') ?? '' });
    pending.set(partition, Number(message.offset) + 1);
    sinceCommit++;
    if (sinceCommit < options.commitEvery) return;
    const offsets = [...pending].map(([p, offset]) => ({ topic: options.topic, partition: p, offset: String(offset) }));
    try {
      await consumer.commitOffsets(offsets);
      for (const entry of offsets) if (pending.get(entry.partition) === Number(entry.offset)) pending.delete(entry.partition);
      sinceCommit = 0;
      emit({ type: 'commit', offsets: offsets.map((entry) => ({ partition: entry.partition, offset: Number(entry.offset) })) });
    } catch (error) {
      emit({ type: 'commit-failed', error: String(error) });
    }
  },
});
