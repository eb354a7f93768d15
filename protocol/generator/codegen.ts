// Turns the schema model into TypeScript: one file per message, an API table, and an index.
//
// Conventions of the generated code (also stated in every generated file):
// - One interface per message and per nested struct, covering every valid version. Properties are
//   the schema names with a lower-case first letter (ThrottleTimeMs -> throttleTimeMs). Nested
//   struct interfaces are prefixed with the message name, without repeating the API name
//   (FetchResponse's PartitionData -> FetchResponsePartitionData, FetchRequest's FetchTopic ->
//   FetchRequestTopic), so every name is unique across the generated files.
// - A property is required when the field is on the wire (untagged) in every version its struct
//   can appear in. Otherwise it is optional (`?: T | undefined`): encoders use the field's default
//   when it is undefined and ignore it in versions that do not carry it. Decoders always fill every
//   property, using the default for fields absent in that version or tagged fields not sent.
// - Defaults: the schema's `default`, else 0 / 0n / false / '' / [] / ZERO_UUID / empty bytes, and
//   null for records and for fields whose default is "null" (as Kafka's Java classes do).
// - int64 is bigint; int8/16/32, uint16/32 and float64 are number; uuid is a lowercase
//   8-4-4-4-12 hex string; bytes and records are Buffer. `records` and `zeroCopy` bytes are views
//   into the frame buffer; other bytes are copies.
// - Tagged fields are written only when they differ from their default; unknown tags are skipped.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type FieldModel,
  type FieldType,
  type MessageModel,
  type RawSchema,
  type StructModel,
  buildMessageModel,
  loadSchemaDir,
  rangeText,
} from './schema.js';

/** APIs whose request and response are generated. */
export const GENERATED_APIS: readonly string[] = [
  'Produce',
  'Fetch',
  'ListOffsets',
  'Metadata',
  'OffsetCommit',
  'OffsetFetch',
  'FindCoordinator',
  'JoinGroup',
  'Heartbeat',
  'LeaveGroup',
  'SyncGroup',
  'DescribeGroups',
  'ListGroups',
  'SaslHandshake',
  'ApiVersions',
  'CreateTopics',
  'DeleteTopics',
  'DeleteRecords',
  'InitProducerId',
  'AddPartitionsToTxn',
  'AddOffsetsToTxn',
  'EndTxn',
  'TxnOffsetCommit',
  'DescribeConfigs',
  'AlterConfigs',
  'SaslAuthenticate',
  'CreatePartitions',
  'DeleteGroups',
  'IncrementalAlterConfigs',
  'OffsetDelete',
  // tidelog's own APIs, from protocol/schemas/ (keys >= 32000, which Kafka clients ignore).
  'tidelog/ScanRecords',
];

/** Headers and data structs generated besides the APIs. */
export const GENERATED_EXTRAS: readonly string[] = [
  'RequestHeader',
  'ResponseHeader',
  'ConsumerProtocolSubscription',
  'ConsumerProtocolAssignment',
  // The key and value layouts of __consumer_offsets records (schemas/coordinator/).
  'coordinator/OffsetCommitKey',
  'coordinator/OffsetCommitValue',
  'coordinator/GroupMetadataKey',
  'coordinator/GroupMetadataValue',
];

/** Map keys (and GENERATED_APIS entries) of tidelog's own schemas carry this prefix. */
const OWN_SCHEMA_PREFIX = 'tidelog/';

/** protocol/schemas/ of this checkout, found from this file in the source tree or under dist/. */
export function defaultOwnSchemaDir(start: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'protocol', 'schemas');
    if (dirname(dir) === dir) throw new Error(`no package.json above ${start}`);
  }
}

export function generatedSchemaFiles(): string[] {
  return [...GENERATED_EXTRAS, ...GENERATED_APIS.flatMap((api) => [`${api}Request`, `${api}Response`])].map((name) => `${name}.json`);
}

/** Every generated file (name -> content), computed in memory from the schema directory. */
export function generateProtocolFiles(schemaDir: string, ownSchemaDir: string = defaultOwnSchemaDir()): Map<string, string> {
  const schemas = loadSchemaDir(schemaDir);
  const coordinatorDir = join(schemaDir, 'coordinator');
  if (existsSync(coordinatorDir)) {
    for (const [file, raw] of loadSchemaDir(coordinatorDir)) schemas.set(`coordinator/${file}`, raw);
  }
  for (const [file, raw] of loadSchemaDir(ownSchemaDir)) schemas.set(`${OWN_SCHEMA_PREFIX}${file}`, raw);
  const files = new Map<string, string>();
  const models: MessageModel[] = [];
  for (const file of generatedSchemaFiles()) {
    const raw = schemas.get(file);
    if (raw === undefined) throw new Error(`schema ${file} not found in ${schemaDir}`);
    const model = buildMessageModel(file, raw);
    models.push(model);
    files.set(`${fileBase(model.name)}.ts`, generateMessageFile(model));
  }
  files.set('apiSchemas.ts', generateApiTable(schemas));
  files.set('index.ts', generateIndex(models));
  return new Map([...files.entries()].sort(([a], [b]) => a.localeCompare(b)));
}

// ---- small helpers ---------------------------------------------------------------------------

function fileBase(messageName: string): string {
  return messageName.charAt(0).toLowerCase() + messageName.slice(1);
}

function upperSnake(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

function docText(text: string): string {
  return text.replace(/\*\//g, '*\\/').replace(/\s+/g, ' ').trim();
}

function headerComment(model: MessageModel | null, source: string): string[] {
  const own = model !== null && model.file.startsWith(OWN_SCHEMA_PREFIX);
  return [
    `// Generated by protocol/generator/generate.ts from ${source}.`,
    '// Do not edit by hand: change the generator (or the schema) and run `npm run generate:protocol`.',
    own ? "// Schema: tidelog's own API, not Kafka's." : '// Schemas: Apache Kafka, Apache-2.0; see ../shared/kafka-protocol/SOURCE.md for the commit.',
    ...(model === null ? [] : ['//', ...messageSummary(model)]),
  ];
}

function messageSummary(model: MessageModel): string[] {
  const key = model.apiKey === null ? '' : `api key ${model.apiKey}, `;
  return [
    `// ${model.name} (${model.type}): ${key}versions ${rangeText(model.validVersions)}, flexible ${rangeText(model.flexibleVersions)}.`,
    '// Conventions: properties absent in some versions are optional; encoders use the default for',
    '// undefined and skip fields the version lacks; decoders fill every property (defaults where absent).',
    '// int64 = bigint, uuid = 8-4-4-4-12 hex string, records = raw Buffer view (never decoded here).',
  ];
}

type Cond = true | false | string;

/** A condition on `version` that selects `subset` among `universe` (both sets of versions). */
function cond(subset: ReadonlySet<number>, universe: ReadonlySet<number>): Cond {
  const inside = [...universe].filter((v) => subset.has(v)).sort((a, b) => a - b);
  if (inside.length === universe.size) return true;
  if (inside.length === 0) return false;
  const all = [...universe].sort((a, b) => a - b);
  const lo = inside[0]!;
  const hi = inside[inside.length - 1]!;
  const contiguous = all.filter((v) => v >= lo && v <= hi).every((v) => subset.has(v));
  if (!contiguous) return `(${inside.map((v) => `version === ${v}`).join(' || ')})`;
  const parts: string[] = [];
  if (lo > all[0]!) parts.push(`version >= ${lo}`);
  if (hi < all[all.length - 1]!) parts.push(`version <= ${hi}`);
  if (parts.length === 2 && lo === hi) return `version === ${lo}`;
  return parts.join(' && ');
}

/** An expression that may be a (nested) conditional, rendered on one line or one branch per line. */
type Expr = string | { readonly cond: string; readonly whenTrue: Expr; readonly whenFalse: Expr };

function pick(c: Cond, whenTrue: () => Expr, whenFalse: () => Expr): Expr {
  if (c === true) return whenTrue();
  if (c === false) return whenFalse();
  return { cond: c, whenTrue: whenTrue(), whenFalse: whenFalse() };
}

function inline(expr: Expr): string {
  if (typeof expr === 'string') return expr;
  const branch = (e: Expr): string => (typeof e === 'string' ? e : `(${inline(e)})`);
  return `${expr.cond} ? ${branch(expr.whenTrue)} : ${branch(expr.whenFalse)}`;
}

const LINE_WIDTH = 120;

/** Renders `expr` after `prefix` on a line indented by `depth` levels; continuation lines indent further. */
function render(expr: Expr, prefix: string, depth: number): string[] {
  const pad = '  '.repeat(depth);
  const one = `${pad}${prefix}${inline(expr)}`;
  if (typeof expr === 'string' || one.length <= LINE_WIDTH) return [one];
  const lines = [`${pad}${prefix}${expr.cond}`];
  for (const [mark, branch] of [['? ', expr.whenTrue], [': ', expr.whenFalse]] as const) {
    const rendered = render(branch, mark, depth + 1);
    lines.push(...rendered);
  }
  return lines;
}

/** Lines of `prefix + expr + suffix`, at indentation 0 (the caller indents the block). */
function renderStatement(prefix: string, expr: Expr, suffix: string): string[] {
  const lines = render(expr, prefix, 0);
  lines[lines.length - 1] += suffix;
  return lines;
}

/** A JSDoc comment, wrapped. */
function docComment(text: string, pad: string): string[] {
  const one = `${pad}/** ${text} */`;
  if (one.length <= LINE_WIDTH) return [one];
  const lines = [`${pad}/**`];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && pad.length + 3 + line.length + 1 + word.length > LINE_WIDTH - 10) {
      lines.push(`${pad} * ${line}`);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(`${pad} * ${line}`);
  lines.push(`${pad} */`);
  return lines;
}

/** `function name(params): returns {`, one parameter per line when long. */
function signature(head: string, params: string[], returns: string): string[] {
  const one = `${head}(${params.join(', ')}): ${returns} {`;
  if (one.length <= LINE_WIDTH) return [one];
  return [`${head}(`, ...params.map((param) => `  ${param},`), `): ${returns} {`];
}

function indent(lines: string[]): string[] {
  return lines.map((line) => (line === '' ? '' : `  ${line}`));
}

function wrapIf(c: Cond, lines: string[]): string[] {
  if (c === true) return lines;
  if (c === false) return [];
  if (lines.length === 1) return [`if (${c}) ${lines[0]!}`];
  return [`if (${c}) {`, ...indent(lines), '}'];
}

function ifElse(c: Cond, whenTrue: () => string[], whenFalse: () => string[]): string[] {
  if (c === true) return whenTrue();
  if (c === false) return whenFalse();
  const a = whenTrue();
  const b = whenFalse();
  if (a.length === 1 && b.length === 1) return [`if (${c}) ${a[0]!}`, `else ${b[0]!}`];
  return [`if (${c}) {`, ...indent(a), '} else {', ...indent(b), '}'];
}

/** Whether the type's encoding differs between flexible and non-flexible versions. */
function compactMatters(type: FieldType): boolean {
  return type.kind === 'array' || (type.kind === 'primitive' && ['string', 'bytes', 'records'].includes(type.name));
}

function nullMatters(type: FieldType): boolean {
  return type.kind !== 'primitive' || ['string', 'bytes', 'records'].includes(type.name);
}

function capital(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}

// ---- per-message generation ------------------------------------------------------------------

class MessageGenerator {
  private readonly wireImports = new Set<string>(['ByteReader', 'ByteWriter']);
  /** Structs used as a single (non-array) struct field: they get default and isDefault helpers. */
  private readonly singleStructs = new Set<StructModel>();

  constructor(private readonly model: MessageModel) {
    for (const struct of model.structs) {
      for (const field of struct.fields) if (field.type.kind === 'struct') this.singleStructs.add(field.type.struct);
    }
  }

  private use(name: string): string {
    this.wireImports.add(name);
    return name;
  }

  // -- types --

  private tsType(type: FieldType): string {
    switch (type.kind) {
      case 'array': {
        const element = this.tsType(type.element);
        return `${element}[]`;
      }
      case 'struct':
        return type.struct.tsName;
      case 'primitive':
        switch (type.name) {
          case 'int64':
            return 'bigint';
          case 'bool':
            return 'boolean';
          case 'string':
          case 'uuid':
            return 'string';
          case 'bytes':
          case 'records':
            return 'Buffer';
          default:
            return 'number';
        }
    }
  }

  private fieldType(field: FieldModel): string {
    return this.tsType(field.type) + (field.nullable.size > 0 ? ' | null' : '');
  }

  private isRequired(field: FieldModel, struct: StructModel): boolean {
    if (field.tag !== null) return false;
    for (const version of struct.appearance) if (!field.present.has(version)) return false;
    return true;
  }

  private defaultExpr(field: FieldModel): string {
    const raw = field.rawDefault;
    const text = raw === undefined ? undefined : String(raw);
    const nullableAnywhere = field.nullable.size > 0;
    const where = `${this.model.name}.${field.schemaName}`;
    if (text === 'null') {
      if (!nullableAnywhere) throw new Error(`${where}: default null on a non-nullable field`);
      return 'null';
    }
    const type = field.type;
    if (type.kind === 'array') {
      if (text !== undefined) throw new Error(`${where}: unsupported array default ${text}`);
      return '[]';
    }
    if (type.kind === 'struct') {
      if (text !== undefined) throw new Error(`${where}: unsupported struct default ${text}`);
      return `default${type.struct.tsName}()`;
    }
    switch (type.name) {
      case 'bool':
        if (text === undefined || text === 'false') return 'false';
        if (text === 'true') return 'true';
        throw new Error(`${where}: bad bool default ${text}`);
      case 'int8':
      case 'int16':
      case 'int32':
      case 'uint16':
      case 'uint32':
      case 'float64': {
        if (text === undefined) return '0';
        const value = Number(text);
        if (!Number.isFinite(value)) throw new Error(`${where}: bad numeric default ${text}`);
        return /^0x/i.test(text) ? text : String(value);
      }
      case 'int64':
        return text === undefined ? '0n' : `${BigInt(text)}n`;
      case 'string':
        return text === undefined ? "''" : `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
      case 'uuid':
        if (text !== undefined) throw new Error(`${where}: unsupported uuid default ${text}`);
        return this.use('ZERO_UUID');
      case 'bytes':
        if (text !== undefined) throw new Error(`${where}: unsupported bytes default ${text}`);
        return this.use('EMPTY_BYTES');
      case 'records':
        return 'null';
    }
  }

  /** Code that is true when `v` (a value of the field's type) differs from the field's default. */
  private differsFromDefault(field: FieldModel, v: string): string {
    const d = this.defaultExpr(field);
    const nullable = field.nullable.size > 0;
    if (d === 'null') return `${v} !== null`;
    const type = field.type;
    if (type.kind === 'array' || (type.kind === 'primitive' && type.name === 'bytes')) {
      return nullable ? `(${v} === null || ${v}.length !== 0)` : `${v}.length !== 0`;
    }
    if (type.kind === 'struct') {
      return nullable ? `(${v} === null || !isDefault${type.struct.tsName}(${v}))` : `!isDefault${type.struct.tsName}(${v})`;
    }
    return `${v} !== ${d}`;
  }

  /** Code that is true when `v` equals the field's default. */
  private equalsDefault(field: FieldModel, v: string): string {
    const d = this.defaultExpr(field);
    const nullable = field.nullable.size > 0;
    if (d === 'null') return `${v} === null`;
    const type = field.type;
    if (type.kind === 'array' || (type.kind === 'primitive' && type.name === 'bytes')) {
      return nullable ? `(${v} !== null && ${v}.length === 0)` : `${v}.length === 0`;
    }
    if (type.kind === 'struct') {
      return nullable ? `(${v} !== null && isDefault${type.struct.tsName}(${v}))` : `isDefault${type.struct.tsName}(${v})`;
    }
    return `${v} === ${d}`;
  }

  /** The field's value for encoding, with the default substituted for undefined. */
  private valueExpr(field: FieldModel, struct: StructModel, object: string): string {
    const access = `${object}.${field.prop}`;
    if (this.isRequired(field, struct)) return access;
    const d = this.defaultExpr(field);
    if (field.nullable.size === 0 || d === 'null') return `${access} ?? ${d}`;
    return `${access} === undefined ? ${d} : ${access}`;
  }

  // -- sizes --

  private minStructBytes(struct: StructModel, version: number): number {
    let bytes = this.model.flexible.has(version) ? 1 : 0;
    for (const field of struct.fields) {
      if (!field.present.has(version) || field.tag !== null) continue;
      bytes += this.minFieldBytes(field.type, field.compact.has(version), field.nullable.has(version), version);
    }
    return bytes;
  }

  private minFieldBytes(type: FieldType, compact: boolean, nullable: boolean, version: number): number {
    switch (type.kind) {
      case 'array':
        return compact ? 1 : 4;
      case 'struct':
        return nullable ? 1 : this.minStructBytes(type.struct, version);
      case 'primitive':
        switch (type.name) {
          case 'bool':
          case 'int8':
            return 1;
          case 'int16':
          case 'uint16':
            return 2;
          case 'int32':
          case 'uint32':
            return 4;
          case 'int64':
          case 'float64':
            return 8;
          case 'uuid':
            return 16;
          case 'string':
            return compact ? 1 : 2;
          case 'bytes':
          case 'records':
            return compact ? 1 : 4;
        }
    }
  }

  /** The smallest encoded element of an array field, over the versions where its compactness is `compact`. */
  private minElementBytes(field: FieldModel, element: FieldType, compact: boolean): number {
    let min = Infinity;
    for (const version of field.present) {
      if (field.compact.has(version) !== compact) continue;
      min = Math.min(min, this.minFieldBytes(element, compact, false, version));
    }
    return min === Infinity || min < 1 ? 1 : min;
  }

  // -- conditions --

  private flexibleCond(struct: StructModel): Cond {
    const flexibleHere = new Set([...struct.appearance].filter((v) => this.model.flexible.has(v)));
    return cond(flexibleHere, struct.appearance);
  }

  /** Compactness of a field, as a condition valid where the field is present. */
  private compactCond(field: FieldModel, struct: StructModel): Cond {
    if (!compactMatters(field.type)) return false;
    const c = cond(field.compact, field.present);
    if (typeof c !== 'string') return c;
    const structFlexible = this.flexibleCond(struct);
    const flexibleWherePresent = [...field.present].filter((v) => this.model.flexible.has(v));
    const same = flexibleWherePresent.length === field.compact.size && flexibleWherePresent.every((v) => field.compact.has(v));
    return same && typeof structFlexible === 'string' ? 'flexible' : c;
  }

  /** Nullability of a field among the versions where it is present with the given compactness. */
  private nullableCond(field: FieldModel, compact: boolean): Cond {
    const context = `${this.model.name}.${field.schemaName}`;
    if (!nullMatters(field.type)) {
      if (field.nullable.size > 0) throw new Error(`${context}: a ${field.type.kind} field cannot be nullable`);
      return false;
    }
    const universe = compactMatters(field.type) ? new Set([...field.present].filter((v) => field.compact.has(v) === compact)) : field.present;
    return cond(field.nullable, universe);
  }

  // -- decoding --

  private readExpr(field: FieldModel, struct: StructModel): Expr {
    const context = `${struct.tsName}.${field.schemaName}`;
    return pick(
      this.compactCond(field, struct),
      () => pick(this.nullableCond(field, true), () => this.readOne(field, true, true, context), () => this.readOne(field, true, false, context)),
      () => pick(this.nullableCond(field, false), () => this.readOne(field, false, true, context), () => this.readOne(field, false, false, context)),
    );
  }

  private readOne(field: FieldModel, compact: boolean, nullable: boolean, context: string): string {
    const type = field.type;
    const c = compact ? 'Compact' : '';
    const n = nullable ? 'Nullable' : '';
    switch (type.kind) {
      case 'struct':
        return nullable ? `reader.readNullableStruct(read${type.struct.tsName}, version)` : `read${type.struct.tsName}(reader, version)`;
      case 'array': {
        const element = type.element;
        let elementReader: string;
        if (element.kind === 'struct') elementReader = `read${element.struct.tsName}`;
        else if (element.kind === 'primitive') {
          const base = element.name === 'string' ? `${c}String` : capital(element.name);
          if (['bytes', 'records'].includes(element.name)) throw new Error(`${context}: arrays of ${element.name} are not supported`);
          elementReader = this.use(`read${base}Element`);
        } else throw new Error(`${context}: nested arrays are not supported`);
        return `reader.read${c}${n}Array(${elementReader}, version, ${this.minElementBytes(field, element, compact)})`;
      }
      case 'primitive':
        switch (type.name) {
          case 'string':
            return `reader.read${c}${n}String()`;
          case 'bytes':
            return `reader.read${c}${n}Bytes${field.zeroCopy ? 'View' : ''}()`;
          case 'records':
            return nullable ? `reader.read${c}Records()` : `reader.read${c}BytesView()`;
          default:
            return `reader.read${capital(type.name)}()`;
        }
    }
  }

  private emitReader(struct: StructModel): string[] {
    const lines: string[] = [];
    const flexible = this.flexibleCond(struct);
    const root = struct.isRoot;
    const name = root ? `decode${struct.tsName}` : `read${struct.tsName}`;
    lines.push(...signature(`${root ? 'export ' : ''}function ${name}`, ['reader: ByteReader', 'version: number'], struct.tsName));
    const body: string[] = [];
    if (root) {
      const { min, max } = this.model.validVersions;
      body.push(`${this.use('checkDecodeVersion')}('${this.model.name}', version, ${min}, ${max}, reader);`);
    }
    if (typeof flexible === 'string') body.push(`const flexible = ${flexible};`);
    const tagged = struct.fields.filter((f) => f.tag !== null).sort((a, b) => a.tag! - b.tag!);
    const entries: string[] = [];
    for (const field of struct.fields) {
      let expression: Expr;
      if (field.tag !== null) expression = this.defaultExpr(field);
      else {
        const present = cond(field.present, struct.appearance);
        expression = pick(present, () => this.readExpr(field, struct), () => this.defaultExpr(field));
      }
      entries.push(...render(expression, `${field.prop}: `, 0).map((line, i, all) => (i === all.length - 1 ? `${line},` : line)));
    }
    const literal = entries.length === 0 ? ['{};'] : ['{', ...indent(entries), '};'];
    if (flexible !== false) {
      // Flexible versions end with a tagged-field section, read after the positional fields.
      body.push(`const value: ${struct.tsName} = ${literal[0]!}`, ...literal.slice(1));
      const tagLines: string[] = [];
      if (tagged.length === 0) tagLines.push('reader.skipTaggedFields();');
      else {
        tagLines.push('for (let count = reader.readTaggedFieldCount(); count > 0; count--) {');
        tagLines.push('  const { tag, end } = reader.readTaggedFieldHeader();');
        tagLines.push('  switch (tag) {');
        for (const field of tagged) {
          const flexibleHere = new Set([...struct.appearance].filter((v) => this.model.flexible.has(v)));
          const when = cond(field.present, flexibleHere);
          const assign = [...renderStatement(`value.${field.prop} = `, this.readExpr(field, struct), ';'), 'reader.endTaggedField(tag, end);'];
          tagLines.push(`    case ${field.tag!}: // ${field.schemaName}`);
          if (when === true) tagLines.push(...indent(indent(indent(assign))));
          else tagLines.push(...indent(indent(indent(ifElse(when, () => assign, () => ['reader.skipTo(end);'])))));
          tagLines.push('      break;');
        }
        tagLines.push('    default: // unknown tags are skipped');
        tagLines.push('      reader.skipTo(end);');
        tagLines.push('  }');
        tagLines.push('}');
      }
      body.push(...(flexible === true ? tagLines : wrapIf('flexible', tagLines)));
      body.push('return value;');
    } else {
      body.push(`return ${literal[0]!}`, ...literal.slice(1));
    }
    lines.push(...indent(body), '}');
    return lines;
  }

  // -- encoding --

  private writeLines(field: FieldModel, struct: StructModel, value: string): string[] {
    const context = `${struct.tsName}.${field.schemaName}`;
    const forCompact = (compact: boolean): string[] =>
      ifElse(
        this.nullableCond(field, compact),
        () => [this.writeOne(field, compact, true, value, context)],
        () => [this.writeOne(field, compact, false, value, context)],
      );
    return ifElse(this.compactCond(field, struct), () => forCompact(true), () => forCompact(false));
  }

  private writeOne(field: FieldModel, compact: boolean, nullable: boolean, value: string, context: string): string {
    const type = field.type;
    const c = compact ? 'Compact' : '';
    const n = nullable ? 'Nullable' : '';
    // A field typed `T | null` (nullable in some version) written in a version where it is not nullable.
    const v = !nullable && field.nullable.size > 0 ? `${this.use('nonNull')}(${value}, '${context}', version)` : value;
    switch (type.kind) {
      case 'struct':
        return nullable
          ? `writer.writeNullableStruct(${v}, write${type.struct.tsName}, version);`
          : `write${type.struct.tsName}(writer, version, ${v});`;
      case 'array': {
        const element = type.element;
        let elementWriter: string;
        if (element.kind === 'struct') elementWriter = `write${element.struct.tsName}`;
        else if (element.kind === 'primitive') {
          const base = element.name === 'string' ? `${c}String` : capital(element.name);
          elementWriter = this.use(`write${base}Element`);
        } else throw new Error(`${context}: nested arrays are not supported`);
        return `writer.write${c}${n}Array(${v}, ${elementWriter}, version);`;
      }
      case 'primitive':
        switch (type.name) {
          case 'string':
            return `writer.write${c}${n}String(${v});`;
          case 'bytes':
            return `writer.write${c}${n}Bytes(${v});`;
          case 'records':
            return nullable ? `writer.write${c}Records(${v});` : `writer.write${c}Bytes(${v});`;
          default:
            return `writer.write${capital(type.name)}(${v});`;
        }
    }
  }

  private emitWriter(struct: StructModel): string[] {
    const root = struct.isRoot;
    const object = root ? 'message' : 'value';
    const name = root ? `encode${struct.tsName}` : `write${struct.tsName}`;
    const lines = signature(`${root ? 'export ' : ''}function ${name}`, ['writer: ByteWriter', 'version: number', `${object}: ${struct.tsName}`], 'void');
    const body: string[] = [];
    if (root) {
      const { min, max } = this.model.validVersions;
      body.push(`${this.use('checkEncodeVersion')}('${this.model.name}', version, ${min}, ${max});`);
    }
    const flexible = this.flexibleCond(struct);
    if (typeof flexible === 'string') body.push(`const flexible = ${flexible};`);
    for (const field of struct.fields) {
      if (field.tag !== null) continue;
      const present = cond(field.present, struct.appearance);
      body.push(...wrapIf(present, this.writeLines(field, struct, this.valueExpr(field, struct, object))));
    }
    const tagged = struct.fields.filter((f) => f.tag !== null).sort((a, b) => a.tag! - b.tag!);
    const tagLines: string[] = [];
    if (tagged.length === 0) tagLines.push('writer.writeEmptyTaggedFields();');
    else {
      const flexibleHere = new Set([...struct.appearance].filter((v) => this.model.flexible.has(v)));
      for (const field of tagged) {
        const t = field.tag!;
        const when = cond(field.present, flexibleHere);
        tagLines.push(`const tagged${t} = ${this.valueExpr(field, struct, object)}; // ${field.schemaName}`);
        const differs = this.differsFromDefault(field, `tagged${t}`);
        tagLines.push(`const write${t} = ${when === true ? '' : `${when} && `}${differs};`);
      }
      tagLines.push(`writer.writeUnsignedVarint(${tagged.map((f) => `Number(write${f.tag!})`).join(' + ')});`);
      for (const field of tagged) {
        const t = field.tag!;
        tagLines.push(`if (write${t}) {`);
        tagLines.push(`  writer.writeUnsignedVarint(${t});`);
        tagLines.push(`  const start = writer.beginSized();`);
        tagLines.push(...indent(this.writeLines(field, struct, `tagged${t}`)));
        tagLines.push(`  writer.endSized(start);`);
        tagLines.push('}');
      }
    }
    if (flexible === true) body.push(...tagLines);
    else if (typeof flexible === 'string') body.push(...(tagLines.length === 1 ? wrapIf('flexible', tagLines) : ['if (flexible) {', ...indent(tagLines), '}']));
    lines.push(...indent(body), '}');
    return lines;
  }

  // -- defaults --

  private emitDefaultHelpers(struct: StructModel): string[] {
    const entries = struct.fields.map((field) => `${field.prop}: ${this.defaultExpr(field)},`);
    const checks = struct.fields.map((field) => {
      const access = `value.${field.prop}`;
      const same = this.equalsDefault(field, access);
      return this.isRequired(field, struct) ? same : `(${access} === undefined || ${same})`;
    });
    return [
      `function default${struct.tsName}(): ${struct.tsName} {`,
      ...(entries.length === 0 ? ['  return {};'] : ['  return {', ...indent(indent(entries)), '  };']),
      '}',
      '',
      `function isDefault${struct.tsName}(value: ${struct.tsName}): boolean {`,
      `  return ${checks.length === 0 ? 'true' : checks.join(' &&\n    ')};`,
      '}',
    ];
  }

  // -- interfaces --

  private emitInterface(struct: StructModel, about: string): string[] {
    const lines: string[] = [];
    const versions = [...struct.appearance].sort((a, b) => a - b);
    const span = versions.length === 0 ? 'none' : `${versions[0]!}-${versions[versions.length - 1]!}`;
    lines.push(...docComment(`${about === '' ? struct.schemaName : docText(about)} (appears in versions ${span})`, ''));
    lines.push(`export interface ${struct.tsName} {`);
    for (const field of struct.fields) {
      const notes = [`versions ${field.versionsText}`];
      if (field.nullableText !== null) notes.push(`nullable ${field.nullableText}`);
      if (field.tag !== null) notes.push(`tag ${field.tag} in ${field.taggedText!}`);
      if (field.flexibleOverrideText !== null) notes.push(`flexible ${field.flexibleOverrideText}`);
      if (field.rawDefault !== undefined) notes.push(`default ${String(field.rawDefault)}`);
      if (field.zeroCopy || (field.type.kind === 'primitive' && field.type.name === 'records')) notes.push('view into the frame');
      const about = docText(field.about);
      lines.push(...docComment(`${about === '' ? '' : `${about} `}(${notes.join('; ')})`, '  '));
      const optional = this.isRequired(field, struct) ? '' : '?';
      lines.push(`  ${field.prop}${optional}: ${this.fieldType(field)}${optional === '?' ? ' | undefined' : ''};`);
    }
    lines.push('}');
    return lines;
  }

  generate(): string {
    const model = this.model;
    const sections: string[][] = [];
    const structAbout = new Map<StructModel, string>();
    for (const struct of model.structs) {
      for (const field of struct.fields) {
        const type = field.type.kind === 'array' ? field.type.element : field.type;
        if (type.kind === 'struct' && !structAbout.has(type.struct)) structAbout.set(type.struct, field.about);
      }
    }
    const schemaConst = `${upperSnake(model.name)}_SCHEMA`;
    const info = [
      `export const ${schemaConst} = {`,
      `  name: '${model.name}',`,
      `  type: '${model.type}',`,
      `  apiKey: ${model.apiKey === null ? 'null' : model.apiKey},`,
      `  minVersion: ${model.validVersions.min},`,
      `  maxVersion: ${model.validVersions.max},`,
      `  /** Versions from this one on use compact encodings and tagged fields (null: none). */`,
      `  firstFlexibleVersion: ${model.flexibleVersions === null ? 'null' : model.flexibleVersions.min},`,
      '} as const;',
    ];
    sections.push(info);
    for (const struct of model.structs) {
      sections.push(this.emitInterface(struct, struct.isRoot ? `${model.name}` : (structAbout.get(struct) ?? '')));
    }
    for (const struct of model.structs) {
      if (struct.isRoot) {
        sections.push(this.emitWriter(struct));
        sections.push(this.emitReader(struct));
      }
    }
    for (const struct of model.structs) {
      if (struct.isRoot) continue;
      sections.push(this.emitWriter(struct));
      sections.push(this.emitReader(struct));
    }
    for (const struct of model.structs) {
      if (this.singleStructs.has(struct)) sections.push(this.emitDefaultHelpers(struct));
    }
    const imports = [...this.wireImports].sort((a, b) => a.localeCompare(b));
    const typeOnly = new Set(['ByteReader', 'ByteWriter']);
    const importNames = imports.map((name) => (typeOnly.has(name) ? `type ${name}` : name));
    const importLine = `import { ${importNames.join(', ')} } from '../wire.js';`;
    const importLines = importLine.length <= LINE_WIDTH ? [importLine] : ['import {', ...importNames.map((name) => `  ${name},`), "} from '../wire.js';"];
    const out = [
      ...headerComment(model, model.file.startsWith(OWN_SCHEMA_PREFIX) ? `protocol/schemas/${model.file.slice(OWN_SCHEMA_PREFIX.length)}` : `kafka-protocol/schemas/${model.file}`),
      '',
      ...importLines,
      '',
      sections.map((section) => section.join('\n')).join('\n\n'),
      '',
    ];
    return out.join('\n');
  }
}

export function generateMessageFile(model: MessageModel): string {
  return new MessageGenerator(model).generate();
}

// ---- the API table and the index -------------------------------------------------------------

function generateApiTable(schemas: ReadonlyMap<string, RawSchema>): string {
  const rows: string[] = [];
  const requests = [...schemas.entries()]
    .filter(([, raw]) => raw.type === 'request' && typeof raw.apiKey === 'number')
    .map(([file, raw]) => ({ file, raw, model: buildMessageModel(file, raw) }))
    .sort((a, b) => a.model.apiKey! - b.model.apiKey!);
  const generated = new Set(GENERATED_APIS.map((api) => api.replace(OWN_SCHEMA_PREFIX, '')));
  const keys: string[] = [];
  for (const { file, model } of requests) {
    const api = model.name.replace(/Request$/, '');
    if (!/^[A-Z][A-Za-z0-9]*$/.test(api)) throw new Error(`${file}: API name ${api} is not an identifier`);
    keys.push(`  ${api}: ${model.apiKey!},`);
    const responseFile = file.replace(/Request\.json$/, 'Response.json');
    const response = schemas.get(responseFile);
    if (response === undefined) throw new Error(`${file}: no ${responseFile}`);
    if (response.flexibleVersions !== schemas.get(file)!.flexibleVersions || response.validVersions !== schemas.get(file)!.validVersions) {
      throw new Error(`${file}: request and response disagree on validVersions or flexibleVersions`);
    }
    if (model.flexibleVersions !== null && model.flexibleVersions.max !== Infinity) {
      throw new Error(`${file}: flexibleVersions must be open-ended`);
    }
    const flexible = model.flexibleVersions === null ? 'null' : String(model.flexibleVersions.min);
    rows.push(
      `  { apiKey: ${model.apiKey!}, name: '${api}', minVersion: ${model.validVersions.min}, maxVersion: ${model.validVersions.max}, firstFlexibleVersion: ${flexible}, generated: ${generated.has(api)} },`,
    );
  }
  return [
    ...headerComment(null, 'every kafka-protocol/schemas/*Request.json and protocol/schemas/*Request.json'),
    '//',
    '// Every API in the schemas, including those without generated codecs, so that a request header',
    '// can be parsed (its version chosen) for any API key.',
    '',
    '/** API names to keys: code names an API by this table, never by a number. */',
    'export const ApiKey = {',
    ...keys,
    '} as const;',
    '',
    'export type ApiName = keyof typeof ApiKey;',
    '',
    'export interface ApiSchema {',
    '  readonly apiKey: number;',
    '  readonly name: string;',
    '  /** The versions the schema defines (not the ones tidelog advertises: see protocol/apis.ts). */',
    '  readonly minVersion: number;',
    '  readonly maxVersion: number;',
    '  /** Versions from this one on are flexible (compact encodings, tagged fields, header v2/v1); null: none. */',
    '  readonly firstFlexibleVersion: number | null;',
    '  /** Whether protocol/generated/ has codecs for its request and response. */',
    '  readonly generated: boolean;',
    '}',
    '',
    'export const API_SCHEMAS: readonly ApiSchema[] = [',
    ...rows,
    '];',
    '',
    'const BY_KEY: ReadonlyMap<number, ApiSchema> = new Map(API_SCHEMAS.map((api) => [api.apiKey, api]));',
    '',
    'export function apiSchema(apiKey: number): ApiSchema | undefined {',
    '  return BY_KEY.get(apiKey);',
    '}',
    '',
    '/** Whether `version` of the API is flexible; undefined for an unknown API key. */',
    'export function isFlexibleVersion(apiKey: number, version: number): boolean | undefined {',
    '  const api = BY_KEY.get(apiKey);',
    '  if (api === undefined) return undefined;',
    '  return api.firstFlexibleVersion !== null && version >= api.firstFlexibleVersion;',
    '}',
    '',
  ].join('\n');
}

function generateIndex(models: MessageModel[]): string {
  const names = ['apiSchemas', ...models.map((model) => fileBase(model.name))].sort((a, b) => a.localeCompare(b));
  return [...headerComment(null, 'the list in protocol/generator/codegen.ts'), '', ...names.map((name) => `export * from './${name}.js';`), ''].join(
    '\n',
  );
}
