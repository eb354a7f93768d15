// Child process for the SIGKILL test: appends with flush-per-append from several concurrent
// appenders and prints one line per acknowledged append, then waits to be killed.
// It runs the compiled engine from dist/, the same code the CLI and broker run.
import { LogManager } from '../../dist/engine/log/logManager.js';
import { resolveLogConfig } from '../../dist/engine/log/logConfig.js';
import { silentLogger } from '../../dist/engine/logger.js';
import { encodeBatch } from '../../dist/segments/recordBatch.js';

const [dataDir, appendersArg, maxAppendsArg] = process.argv.slice(2);
const appenders = Number(appendersArg);
const maxAppends = Number(maxAppendsArg);
const manager = await LogManager.open({
  dataDir,
  logger: silentLogger,
  configFor: () => resolveLogConfig({ flush: { mode: 'every-append' }, segmentBytes: 64 * 1024 }),
});
const log = await manager.getOrCreateLog('killed', 0);
let started = 0;

async function appender(id) {
  while (started < maxAppends) {
    const label = `a${id}-${started++}`;
    const records = Array.from({ length: 1 + (started % 5) }, (_, i) => ({ key: Buffer.from(label), value: Buffer.from(`${label}-${i}-${'x'.repeat(started % 200)}`), timestamp: 1_700_000_000_000 + started }));
    const result = await log.append(encodeBatch(records));
    process.stdout.write(`ack ${label} ${result.baseOffset} ${result.lastOffset} ${records.length}\n`);
  }
}

await Promise.all(Array.from({ length: appenders }, (_, id) => appender(id)));
process.stdout.write('done\n');
// Stay alive until killed: the test wants a SIGKILL, not a clean exit.
setInterval(() => undefined, 1000);
