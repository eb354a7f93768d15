#!/usr/bin/env -S node --initial-old-space-size=64
// The heap flag: with V8's default small initial old space, a broker under produce load ran a full
// GC about every 25 ms with an ~8 MB live heap (half its CPU); 64 MB removes that (bench load notes).
// The CLI runs the compiled output in dist/ (built by `npm install` through the `prepare` script),
// so worker threads, tests that spawn processes and benchmarks all execute the same JavaScript.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('tidelog: dist/ is missing; run `npm install` (or `npm run build`) in the checkout first\n');
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
