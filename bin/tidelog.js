#!/usr/bin/env node
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
