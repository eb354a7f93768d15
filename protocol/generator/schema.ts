// Reading Kafka's message schemas (clients/src/main/resources/common/message/*.json) into a model
// the code generator walks. The files are JSON with whole-line `//` comments.
//
// Versions are kept as explicit sets of integers: a message has at most a few dozen versions, and
// sets make "is this field present in every version this struct can appear in" a subset test.

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export interface VersionRange {
  readonly min: number;
  /** Infinity for an open range ("3+"). */
  readonly max: number;
}

/** "3+", "0-7", "5" or "none" (null). */
export function parseVersionRange(text: string, what: string): VersionRange | null {
  const trimmed = text.trim();
  if (trimmed === 'none') return null;
  let match = /^(\d+)\+$/.exec(trimmed);
  if (match) return { min: Number(match[1]), max: Infinity };
  match = /^(\d+)-(\d+)$/.exec(trimmed);
  if (match) {
    const range = { min: Number(match[1]), max: Number(match[2]) };
    if (range.min > range.max) throw new Error(`${what}: empty version range "${text}"`);
    return range;
  }
  match = /^(\d+)$/.exec(trimmed);
  if (match) return { min: Number(match[1]), max: Number(match[1]) };
  throw new Error(`${what}: bad version range "${text}"`);
}

export function rangeText(range: VersionRange | null): string {
  if (range === null) return 'none';
  if (range.max === Infinity) return `${range.min}+`;
  return range.min === range.max ? `${range.min}` : `${range.min}-${range.max}`;
}

// ---- the JSON as written ---------------------------------------------------------------------

export interface RawField {
  name: string;
  type: string;
  versions?: string;
  nullableVersions?: string;
  taggedVersions?: string;
  tag?: number;
  default?: string | number | boolean;
  flexibleVersions?: string;
  fields?: RawField[];
  about?: string;
  zeroCopy?: boolean;
}

export interface RawStruct {
  name: string;
  versions: string;
  fields: RawField[];
}

export interface RawSchema {
  apiKey?: number;
  type: 'request' | 'response' | 'header' | 'data' | 'metadata';
  name: string;
  validVersions: string;
  flexibleVersions: string;
  fields: RawField[];
  commonStructs?: RawStruct[];
}

/** Drops every line whose first non-blank characters are `//`, as SOURCE.md describes. */
export function stripComments(text: string): string {
  return text
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('//'))
    .join('\n');
}

export function parseSchemaText(text: string, file: string): RawSchema {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stripComments(text));
  } catch (error) {
    throw new Error(`${file}: not JSON after stripping comments: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null) throw new Error(`${file}: not an object`);
  const schema = parsed as RawSchema;
  if (typeof schema.name !== 'string' || typeof schema.validVersions !== 'string' || !Array.isArray(schema.fields)) {
    throw new Error(`${file}: missing name, validVersions or fields`);
  }
  return schema;
}

/** Every `*.json` directly in `dir`, parsed, keyed by file name. */
export function loadSchemaDir(dir: string): Map<string, RawSchema> {
  const schemas = new Map<string, RawSchema>();
  for (const file of readdirSync(dir).filter((name) => name.endsWith('.json')).sort()) {
    schemas.set(file, parseSchemaText(readFileSync(join(dir, file), 'utf8'), file));
  }
  return schemas;
}

// ---- the model -------------------------------------------------------------------------------

export type PrimitiveName =
  | 'bool'
  | 'int8'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'uint16'
  | 'uint32'
  | 'float64'
  | 'string'
  | 'bytes'
  | 'uuid'
  | 'records';

const PRIMITIVES: ReadonlySet<string> = new Set<PrimitiveName>([
  'bool',
  'int8',
  'int16',
  'int32',
  'int64',
  'uint16',
  'uint32',
  'float64',
  'string',
  'bytes',
  'uuid',
  'records',
]);

export type FieldType =
  | { readonly kind: 'primitive'; readonly name: PrimitiveName }
  | { readonly kind: 'array'; readonly element: FieldType }
  | { readonly kind: 'struct'; readonly struct: StructModel };

export interface FieldModel {
  /** As in the schema, e.g. "ThrottleTimeMs". */
  readonly schemaName: string;
  /** The TypeScript property, e.g. "throttleTimeMs". */
  readonly prop: string;
  readonly type: FieldType;
  readonly about: string;
  readonly versionsText: string;
  /** Versions (within where the enclosing struct appears) in which the field is on the wire. */
  readonly present: ReadonlySet<number>;
  /** Versions in which null is allowed. */
  readonly nullable: ReadonlySet<number>;
  readonly nullableText: string | null;
  /** Tagged fields: the tag and the versions in which it is tagged. */
  readonly tag: number | null;
  readonly taggedText: string | null;
  /** Versions in which the field uses compact encodings (the message's or the field's own flexibleVersions). */
  readonly compact: ReadonlySet<number>;
  readonly flexibleOverrideText: string | null;
  readonly rawDefault: string | number | boolean | undefined;
  readonly zeroCopy: boolean;
}

export interface StructModel {
  readonly schemaName: string;
  /** Unique across all generated files: the message name, then the schema name without a repeated API name. */
  readonly tsName: string;
  readonly fields: FieldModel[];
  /** Message versions in which this struct can appear. */
  readonly appearance: Set<number>;
  readonly isRoot: boolean;
}

export interface MessageModel {
  readonly file: string;
  readonly name: string;
  readonly type: RawSchema['type'];
  readonly apiKey: number | null;
  readonly validVersions: VersionRange;
  readonly flexibleVersions: VersionRange | null;
  readonly versions: ReadonlySet<number>;
  readonly flexible: ReadonlySet<number>;
  readonly root: StructModel;
  /** Every struct, the root first, then in order of first appearance. */
  readonly structs: StructModel[];
}

export function lowerFirst(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

function expand(range: VersionRange | null, universe: ReadonlySet<number>): Set<number> {
  const out = new Set<number>();
  if (range === null) return out;
  for (const version of universe) if (version >= range.min && version <= range.max) out.add(version);
  return out;
}

function intersect(a: ReadonlySet<number>, b: ReadonlySet<number>): Set<number> {
  const out = new Set<number>();
  for (const value of a) if (b.has(value)) out.add(value);
  return out;
}

interface StructDefinition {
  readonly name: string;
  readonly fields: RawField[];
  readonly versions: VersionRange | null;
  readonly appearance: Set<number>;
  model: StructModel | null;
}

/** Builds the model of one schema file. */
export function buildMessageModel(file: string, raw: RawSchema): MessageModel {
  const where = `${file} (${raw.name})`;
  const validRange = parseVersionRange(raw.validVersions, `${where} validVersions`);
  if (validRange === null || validRange.max === Infinity) throw new Error(`${where}: validVersions must be a closed range`);
  const versions = new Set<number>();
  for (let v = validRange.min; v <= validRange.max; v++) versions.add(v);
  const flexibleRange = parseVersionRange(raw.flexibleVersions ?? 'none', `${where} flexibleVersions`);
  const flexible = expand(flexibleRange, versions);

  // Every named struct: inline definitions ("fields" on a field) and commonStructs.
  const definitions = new Map<string, StructDefinition>();
  const define = (name: string, fields: RawField[], versionsText: string | undefined): void => {
    if (definitions.has(name)) throw new Error(`${where}: struct ${name} is defined twice`);
    definitions.set(name, {
      name,
      fields,
      versions: versionsText === undefined ? null : parseVersionRange(versionsText, `${where} struct ${name}`),
      appearance: new Set(),
      model: null,
    });
    collect(fields);
  };
  const collect = (fields: RawField[]): void => {
    for (const field of fields) {
      if (field.fields !== undefined) define(field.type.replace(/^\[\]/, ''), field.fields, field.versions);
    }
  };
  for (const common of raw.commonStructs ?? []) define(common.name, common.fields, common.versions);
  collect(raw.fields);

  // Where each struct appears: the union, over every field using it, of the versions that field is present in.
  const present = (field: RawField, appearance: ReadonlySet<number>): Set<number> => {
    if (field.versions === undefined) throw new Error(`${where}: field ${field.name} has no versions`);
    return intersect(appearance, expand(parseVersionRange(field.versions, `${where} ${field.name}`), versions));
  };
  const visit = (fields: RawField[], appearance: ReadonlySet<number>): void => {
    for (const field of fields) {
      const structName = field.type.replace(/^\[\]/, '');
      const definition = definitions.get(structName);
      if (definition === undefined) continue;
      const where = present(field, appearance);
      for (const version of where) definition.appearance.add(version);
      visit(definition.fields, where);
    }
  };
  visit(raw.fields, versions);

  const structs: StructModel[] = [];
  // FetchResponse's PartitionData -> FetchResponsePartitionData; FetchRequest's FetchTopic ->
  // FetchRequestTopic (the API name is not repeated); MetadataRequestTopic stays as it is.
  const apiName = raw.name.replace(/(Request|Response)$/, '');
  const tsNameOf = (schemaName: string): string => {
    if (schemaName.startsWith(raw.name)) return schemaName;
    const rest = schemaName.slice(apiName.length);
    if (schemaName.startsWith(apiName) && /^[A-Z]/.test(rest)) return raw.name + rest;
    return raw.name + schemaName;
  };

  const resolveType = (typeText: string, context: string): FieldType => {
    if (typeText.startsWith('[]')) return { kind: 'array', element: resolveType(typeText.slice(2), context) };
    if (PRIMITIVES.has(typeText)) return { kind: 'primitive', name: typeText as PrimitiveName };
    const definition = definitions.get(typeText);
    if (definition === undefined) throw new Error(`${where}: ${context} has unknown type ${typeText}`);
    return { kind: 'struct', struct: modelOf(definition) };
  };

  const buildFields = (fields: RawField[], appearance: ReadonlySet<number>, structName: string): FieldModel[] => {
    const out: FieldModel[] = [];
    const tags = new Set<number>();
    const props = new Set<string>();
    for (const field of fields) {
      const context = `${structName}.${field.name}`;
      const onWire = present(field, appearance);
      if (onWire.size === 0) continue; // never on the wire in a valid version (e.g. an unreleased version)
      const nullableText = field.nullableVersions ?? null;
      const nullable = intersect(onWire, expand(nullableText === null ? null : parseVersionRange(nullableText, context), versions));
      let tag: number | null = null;
      const taggedText = field.taggedVersions ?? null;
      if (field.tag !== undefined || taggedText !== null) {
        if (field.tag === undefined || taggedText === null) throw new Error(`${where}: ${context} needs both tag and taggedVersions`);
        const tagged = intersect(onWire, expand(parseVersionRange(taggedText, context), versions));
        for (const version of onWire) {
          if (!tagged.has(version)) throw new Error(`${where}: ${context} is tagged in only some of its versions`);
          if (!flexible.has(version)) throw new Error(`${where}: ${context} is tagged in non-flexible version ${version}`);
        }
        if (tags.has(field.tag)) throw new Error(`${where}: ${structName} uses tag ${field.tag} twice`);
        tags.add(field.tag);
        tag = field.tag;
      }
      const overrideText = field.flexibleVersions ?? null;
      const compact =
        overrideText === null ? intersect(onWire, flexible) : intersect(onWire, expand(parseVersionRange(overrideText, context), versions));
      const prop = lowerFirst(field.name);
      if (props.has(prop)) throw new Error(`${where}: ${structName} has two fields named ${prop}`);
      props.add(prop);
      out.push({
        schemaName: field.name,
        prop,
        type: resolveType(field.type, context),
        about: field.about ?? '',
        versionsText: field.versions ?? '',
        present: onWire,
        nullable,
        nullableText,
        tag,
        taggedText,
        compact,
        flexibleOverrideText: overrideText,
        rawDefault: field.default,
        zeroCopy: field.zeroCopy === true,
      });
    }
    return out;
  };

  const modelOf = (definition: StructDefinition): StructModel => {
    if (definition.model !== null) return definition.model;
    const model: StructModel = {
      schemaName: definition.name,
      tsName: tsNameOf(definition.name),
      fields: [],
      appearance: definition.appearance,
      isRoot: false,
    };
    definition.model = model;
    structs.push(model);
    model.fields.push(...buildFields(definition.fields, definition.appearance, definition.name));
    return model;
  };

  const root: StructModel = { schemaName: raw.name, tsName: raw.name, fields: [], appearance: versions, isRoot: true };
  structs.push(root);
  root.fields.push(...buildFields(raw.fields, versions, raw.name));

  const names = new Set<string>();
  for (const struct of structs) {
    if (names.has(struct.tsName)) throw new Error(`${where}: two structs named ${struct.tsName}`);
    names.add(struct.tsName);
  }

  return {
    file,
    name: raw.name,
    type: raw.type,
    apiKey: typeof raw.apiKey === 'number' ? raw.apiKey : null,
    validVersions: validRange,
    flexibleVersions: flexibleRange,
    versions,
    flexible,
    root,
    structs,
  };
}
