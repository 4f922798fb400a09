// The metric names a PromQL expression reads, found by Prometheus's own grammar (the lezer
// parser behind its web UI), so functions, keywords, label names and strings never pass for
// metrics. Grafana's macros are replaced by a duration first: they are not PromQL.
import { parser } from '@prometheus-io/lezer-promql';

const GRAFANA_MACROS = /\$__(rate_interval|interval|range)\b/g;

export function metricNames(expr: string): string[] {
  const q = expr.replace(GRAFANA_MACROS, '5m');
  const names = new Set<string>();
  const errors: string[] = [];
  parser.parse(q).iterate({
    enter(n) {
      if (n.type.isError) errors.push(`at ${n.from}: ${JSON.stringify(q.slice(Math.max(0, n.from - 10), n.to + 10))}`);
      // A metric name is the Identifier that opens a vector selector (`name{...}`).
      if (n.name === 'Identifier' && n.node.parent?.name === 'VectorSelector') names.add(q.slice(n.from, n.to));
    },
  });
  if (errors.length) throw new Error(`not valid PromQL: ${expr} (${errors.join('; ')})`);
  return [...names];
}
