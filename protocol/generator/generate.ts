// CLI: regenerates protocol/generated/ from Kafka's message schemas (and tidelog's own, in
// <repo>/protocol/schemas/, which codegen.ts always reads besides them).
//
//   npm run generate:protocol                 schemas from <repo>/../shared/kafka-protocol/schemas
//   node dist/protocol/generator/generate.js <schemaDir> [outDir]
//
// The repository root is found by walking up from this file to the nearest package.json, so the
// same code works from protocol/generator/ (vitest) and from dist/protocol/generator/ (node).
// Files in the output directory that are no longer generated are removed.

import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { generateProtocolFiles } from './codegen.js';

export function findRepoRoot(start: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = start;
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${start}`);
    dir = parent;
  }
}

export function defaultSchemaDir(root: string = findRepoRoot()): string {
  return resolve(root, '..', 'shared', 'kafka-protocol', 'schemas');
}

export function defaultOutputDir(root: string = findRepoRoot()): string {
  return join(root, 'protocol', 'generated');
}

/** Writes the generated files; returns how many changed. Only `.ts` files are managed in `outDir`. */
export function writeGeneratedFiles(schemaDir: string, outDir: string): { written: number; removed: number; total: number } {
  const files = generateProtocolFiles(schemaDir);
  mkdirSync(outDir, { recursive: true });
  let written = 0;
  let removed = 0;
  for (const [name, content] of files) {
    const path = join(outDir, name);
    if (existsSync(path) && readFileSync(path, 'utf8') === content) continue;
    writeFileSync(path, content);
    written++;
  }
  for (const name of readdirSync(outDir)) {
    if (name.endsWith('.ts') && !files.has(name)) {
      rmSync(join(outDir, name));
      removed++;
    }
  }
  return { written, removed, total: files.size };
}

function main(argv: string[]): void {
  const root = findRepoRoot();
  const schemaDir = resolve(argv[0] ?? defaultSchemaDir(root));
  const outDir = resolve(argv[1] ?? defaultOutputDir(root));
  if (!existsSync(schemaDir)) {
    throw new Error(`schema directory ${schemaDir} does not exist (pass it as the first argument)`);
  }
  const { written, removed, total } = writeGeneratedFiles(schemaDir, outDir);
  console.log(`protocol: ${total} files in ${outDir} (${written} written, ${removed} removed) from ${schemaDir}`);
}

const invokedPath = process.argv[1];
if (invokedPath !== undefined && import.meta.url === pathToFileURL(resolve(invokedPath)).href) {
  main(process.argv.slice(2));
}
