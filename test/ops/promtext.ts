// A strict parser of the Prometheus text exposition format (version 0.0.4), as node_exporter's
// textfile collector reads it, stricter where a lax file would hide a bug: no blank lines,
// HELP and TYPE before a family's samples and at most once, a family's samples contiguous,
// no duplicate series, no timestamps (the textfile collector refuses them), counters >= 0.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string | null;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export function parsePrometheus(text: string): Map<string, MetricFamily> {
  if (!text.endsWith('\n')) throw new Error('the file must end with a newline');
  const families = new Map<string, MetricFamily>();
  const closed = new Set<string>();
  const series = new Set<string>();
  let current: string | null = null;
  const family = (name: string): MetricFamily => {
    let f = families.get(name);
    if (!f) {
      f = { name, type: 'untyped', help: null, samples: [] };
      families.set(name, f);
    }
    if (current !== name) {
      if (closed.has(name)) throw new Error(`family ${name} appears in two places`);
      if (current) closed.add(current);
      current = name;
    }
    return f;
  };
  text
    .slice(0, -1)
    .split('\n')
    .forEach((line, i) => {
      const at = `line ${i + 1}`;
      if (line === '') throw new Error(`${at}: blank line`);
      if (line.startsWith('#')) {
        const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
        if (!m) return; // a plain comment
        const [, kw, name, rest] = m as unknown as [string, string, string, string];
        if (!NAME.test(name)) throw new Error(`${at}: bad metric name ${name}`);
        const f = family(name);
        if (f.samples.length > 0) throw new Error(`${at}: ${kw} for ${name} after its samples`);
        if (kw === 'HELP') {
          if (f.help !== null) throw new Error(`${at}: second HELP for ${name}`);
          f.help = unescape(rest, false, at);
        } else {
          if (!TYPES.has(rest)) throw new Error(`${at}: unknown type ${rest}`);
          if (f.type !== 'untyped') throw new Error(`${at}: second TYPE for ${name}`);
          f.type = rest as MetricFamily['type'];
        }
        return;
      }
      const s = parseSample(line, at);
      const f = family(s.name);
      const key = `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`;
      if (series.has(key)) throw new Error(`${at}: duplicate series ${line}`);
      series.add(key);
      if (f.type === 'counter') {
        if (!s.name.endsWith('_total')) throw new Error(`${at}: counter ${s.name} does not end in _total`);
        if (!(s.value >= 0)) throw new Error(`${at}: counter ${s.name} is ${s.value}`);
      }
      f.samples.push(s);
    });
  return families;
}

function parseSample(line: string, at: string): Sample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
  if (!m) throw new Error(`${at}: not a sample (or has a timestamp): ${line}`);
  const [, name, braces, raw] = m as unknown as [string, string, string | undefined, string];
  const labels: Record<string, string> = {};
  if (braces) {
    let rest = braces.slice(1, -1);
    while (rest.length > 0) {
      const lm = /^([^=]+)="((?:[^"\\]|\\.)*)"(,?)/.exec(rest);
      if (!lm) throw new Error(`${at}: bad labels ${braces}`);
      const [all, k, v, comma] = lm as unknown as [string, string, string, string];
      if (!LABEL.test(k) || k.startsWith('__')) throw new Error(`${at}: bad label name ${k}`);
      if (k in labels) throw new Error(`${at}: label ${k} twice`);
      labels[k] = unescape(v, true, at);
      rest = rest.slice(all.length);
      if (!comma && rest.length > 0) throw new Error(`${at}: missing comma in ${braces}`);
    }
  }
  let value: number;
  if (raw === 'NaN') value = NaN;
  else if (raw === '+Inf') value = Infinity;
  else if (raw === '-Inf') value = -Infinity;
  else if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw)) value = Number(raw);
  else throw new Error(`${at}: bad value ${raw}`);
  return { name, labels, value };
}

function unescape(s: string, quotes: boolean, at: string): string {
  return s.replace(/\\(.)/g, (_, c: string) => {
    if (c === '\\') return '\\';
    if (c === 'n') return '\n';
    if (c === '"' && quotes) return '"';
    throw new Error(`${at}: bad escape \\${c}`);
  });
}

/** The value of the one sample of `name` whose labels include `labels`. */
export function value(families: Map<string, MetricFamily>, name: string, labels: Record<string, string> = {}): number {
  const f = families.get(name);
  if (!f) throw new Error(`no metric ${name}`);
  const hits = f.samples.filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hits.length !== 1) throw new Error(`${hits.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return hits[0]!.value;
}
