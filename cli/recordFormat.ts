// How `consume` and `replay` print a record: the value alone (value), one JSON object per line
// (json: key, value and header values as UTF-8 text or null), or kcat's
// `topic [partition] @ offset: key=K headers=k=v,... value` (kcat-like).
import type { ConsumerRecord } from '../client/index.js';

export type RecordFormat = 'value' | 'json' | 'kcat-like';

function text(buffer: Buffer | null): string | null {
  return buffer === null ? null : buffer.toString('utf8');
}

export function formatRecord(record: ConsumerRecord, format: RecordFormat): string {
  if (format === 'value') return `${text(record.value) ?? ''}\n`;
  if (format === 'json') {
    return `${JSON.stringify({
      topic: record.topic,
      partition: record.partition,
      offset: Number(record.offset),
      timestamp: record.timestamp,
      key: text(record.key),
      value: text(record.value),
      headers: Object.fromEntries(record.headers.map((header) => [header.key, text(header.value)])),
    })}\n`;
  }
  const headers = record.headers.map((header) => `${header.key}=${text(header.value) ?? ''}`).join(',');
  return `${record.topic} [${record.partition}] @ ${record.offset}: key=${text(record.key) ?? ''}${headers.length > 0 ? ` headers=${headers}` : ''} ${text(record.value) ?? ''}\n`;
}
