// A small JSON Schema (draft 2020-12) validator for the keywords docs/status-schema.json
// uses. An unknown keyword is an error, so the schema cannot quietly rely on one this
// validator would ignore.
type Schema = Record<string, unknown>;

const KNOWN = new Set([
  '$schema', '$defs', 'title', 'description', 'type', 'const', 'enum', 'required', 'properties',
  'additionalProperties', 'items', 'oneOf', '$ref', 'minimum', 'exclusiveMinimum', 'pattern', 'format',
]);

export function validate(root: Schema, value: unknown): string[] {
  const errors: string[] = [];
  check(root, root, value, '$', errors);
  return errors;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function check(root: Schema, s: Schema, v: unknown, at: string, errors: string[]): void {
  for (const k of Object.keys(s)) if (!KNOWN.has(k)) throw new Error(`schema at ${at}: unsupported keyword ${k}`);
  if (typeof s.$ref === 'string') {
    const m = /^#\/\$defs\/(\w+)$/.exec(s.$ref);
    const target = m ? (root.$defs as Record<string, Schema>)[m[1]!] : undefined;
    if (!target) throw new Error(`schema: unresolved $ref ${s.$ref}`);
    check(root, target, v, at, errors);
  }
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? (s.type as string[]) : [s.type as string];
    const t = typeOf(v);
    if (!types.includes(t) && !(t === 'integer' && types.includes('number'))) {
      errors.push(`${at}: ${t}, expected ${types.join(' or ')}`);
      return;
    }
  }
  if ('const' in s && v !== s.const) errors.push(`${at}: ${JSON.stringify(v)}, expected ${JSON.stringify(s.const)}`);
  if (Array.isArray(s.enum) && !s.enum.includes(v)) errors.push(`${at}: ${JSON.stringify(v)} not one of ${JSON.stringify(s.enum)}`);
  if (typeof v === 'number') {
    if (typeof s.minimum === 'number' && v < s.minimum) errors.push(`${at}: ${v} < ${s.minimum}`);
    if (typeof s.exclusiveMinimum === 'number' && v <= s.exclusiveMinimum) errors.push(`${at}: ${v} <= ${s.exclusiveMinimum}`);
  }
  if (typeof v === 'string') {
    if (typeof s.pattern === 'string' && !new RegExp(s.pattern, 'u').test(v)) errors.push(`${at}: ${JSON.stringify(v)} does not match ${s.pattern}`);
    if (s.format === 'date-time' && Number.isNaN(Date.parse(v))) errors.push(`${at}: ${JSON.stringify(v)} is not a date-time`);
  }
  if (Array.isArray(s.oneOf)) {
    const passing = (s.oneOf as Schema[]).filter((sub) => {
      const e: string[] = [];
      check(root, sub, v, at, e);
      return e.length === 0;
    });
    if (passing.length !== 1) errors.push(`${at}: matches ${passing.length} of the oneOf alternatives`);
  }
  if (Array.isArray(v) && s.items) v.forEach((item, i) => check(root, s.items as Schema, item, `${at}[${i}]`, errors));
  if (typeOf(v) === 'object') {
    const o = v as Record<string, unknown>;
    for (const r of (s.required as string[] | undefined) ?? []) if (!(r in o)) errors.push(`${at}: missing ${r}`);
    const props = (s.properties as Record<string, Schema> | undefined) ?? {};
    for (const [k, val] of Object.entries(o)) {
      if (props[k]) check(root, props[k], val, `${at}.${k}`, errors);
      else if (s.additionalProperties === false) errors.push(`${at}: unexpected property ${k}`);
      else if (typeof s.additionalProperties === 'object') check(root, s.additionalProperties as Schema, val, `${at}.${k}`, errors);
    }
  }
}
