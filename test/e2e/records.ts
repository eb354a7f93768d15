// Shared by the e2e suites: records as the tests send them, and the same records as kcat and the
// raw Fetch client read them back, in one comparable shape.
import type { DecodedRecord } from '../../segments/recordBatch.js';
import { kcat, type BrokerProcess } from '../support/brokerProcess.js';

/** A record as read back by any reader; text fields because the tests send text. */
export interface ReadRecord {
  partition: number;
  offset: number;
  key: string;
  value: string;
  /** [key, value] in record order. */
  headers: Array<[string, string]>;
  timestamp: number;
}

/**
 * kcat's output format for records: one line per record, fields split by '|'. Test values never
 * contain '|', ',', '=' or newlines, so the header list (`k=v,k=v`) splits unambiguously.
 */
export const KCAT_RECORD_FORMAT = '%p|%o|%T|%k|%s|%h\\n';

export function parseKcatRecords(output: string): ReadRecord[] {
  const records: ReadRecord[] = [];
  for (const line of output.split('\n')) {
    if (line.length === 0) continue;
    const fields = line.split('|');
    if (fields.length !== 6) throw new Error(`unexpected kcat line (${fields.length} fields): ${JSON.stringify(line)}`);
    const [partition, offset, timestamp, key, value, headerText] = fields as [string, string, string, string, string, string];
    const headers: Array<[string, string]> =
      headerText.length === 0
        ? []
        : headerText.split(',').map((pair) => {
            const at = pair.indexOf('=');
            if (at < 0) throw new Error(`unexpected kcat header ${JSON.stringify(pair)} in ${JSON.stringify(line)}`);
            return [pair.slice(0, at), pair.slice(at + 1)];
          });
    records.push({ partition: Number(partition), offset: Number(offset), timestamp: Number(timestamp), key, value, headers });
  }
  return records;
}

/** `kcat -C -e` of a topic (every partition) with the record format above. */
export async function kcatConsume(broker: BrokerProcess, topic: string, offsetSpec: string, extra: readonly string[] = [], timeoutMs = 30_000): Promise<ReadRecord[]> {
  const result = await kcat(broker, ['-C', '-t', topic, '-o', offsetSpec, '-e', '-q', '-f', KCAT_RECORD_FORMAT, ...extra], { timeoutMs });
  return parseKcatRecords(result.stdout.toString('utf8'));
}

export function fromDecoded(partition: number, record: DecodedRecord): ReadRecord {
  return {
    partition,
    offset: record.offset,
    timestamp: record.timestamp,
    key: record.key?.toString('utf8') ?? '',
    value: record.value?.toString('utf8') ?? '',
    headers: record.headers.map((header) => [header.key, header.value?.toString('utf8') ?? '']),
  };
}

/** Records grouped by partition, each list in offset order. */
export function byPartition(records: readonly ReadRecord[]): Map<number, ReadRecord[]> {
  const groups = new Map<number, ReadRecord[]>();
  for (const record of records) {
    const list = groups.get(record.partition) ?? [];
    list.push(record);
    groups.set(record.partition, list);
  }
  for (const list of groups.values()) list.sort((a, b) => a.offset - b.offset);
  return new Map([...groups.entries()].sort((a, b) => a[0] - b[0]));
}
