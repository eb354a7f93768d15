// Child process for the full-disk test, run under `ulimit -f` so writes past a size fail with
// EFBIG the way they fail with ENOSPC on a full disk. Prints one JSON report on stdout.
import { LogManager } from '../../dist/engine/log/logManager.js';
import { resolveLogConfig } from '../../dist/engine/log/logConfig.js';
import { silentLogger } from '../../dist/engine/logger.js';
import { decodeRecords, encodeBatch } from '../../dist/segments/recordBatch.js';

// The kernel sends SIGXFSZ before failing the write; a handler keeps the process alive.
process.on('SIGXFSZ', () => undefined);

const [dataDir] = process.argv.slice(2);
const config = () => resolveLogConfig({ flush: { mode: 'every-append' } });
const batch = (label, bytes) => encodeBatch([{ key: Buffer.from(label), value: Buffer.alloc(bytes, 0x61), timestamp: 1_700_000_000_000 }]);

async function contents(log) {
  const labels = [];
  let offset = log.logStartOffset;
  while (offset < log.logEndOffset) {
    const { records } = await log.read(offset, 1 << 20);
    let cursor = 0;
    while (cursor < records.length) {
      const size = records.readInt32BE(cursor + 8) + 12;
      const batchBytes = records.subarray(cursor, cursor + size);
      for (const record of decodeRecords(batchBytes)) labels.push(record.key.toString());
      offset = Number(batchBytes.readBigInt64BE(0)) + batchBytes.readInt32BE(23) + 1;
      cursor += size;
    }
  }
  return labels;
}

const report = { acked: [], failure: null, afterFailure: null, appendAfterFailure: null, reopened: null };
const manager = await LogManager.open({ dataDir, logger: silentLogger, configFor: config });
const log = await manager.getOrCreateLog('full', 0);
for (let i = 0; i < 10_000; i++) {
  try {
    await log.append(batch(`b${i}`, 1000));
    report.acked.push(`b${i}`);
  } catch (error) {
    report.failure = { name: error.name, message: error.message, code: error.kafkaErrorCode };
    break;
  }
}
report.afterFailure = await contents(log);
try {
  await log.append(batch('tiny', 1));
  report.appendAfterFailure = 'ok';
} catch (error) {
  report.appendAfterFailure = error.name;
}
await manager.close().catch(() => undefined);
const again = await LogManager.open({ dataDir, logger: silentLogger, configFor: config });
report.reopened = await contents(again.getLog('full', 0));
await again.close().catch(() => undefined);
process.stdout.write(JSON.stringify(report) + '\n');
