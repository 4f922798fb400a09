import ignore from 'ignore';

/** Whether a set-relative, `/`-separated path is kept out by the set's `exclude` patterns. */
export type ExcludeMatcher = (rel: string, isDir: boolean) => boolean;

/**
 * The one matcher for a set's `exclude` (gitignore rules: a directory pattern such as
 * `cache/` matches the directory itself, so it is asked with a trailing slash). Asked for
 * every path of every scan: with no patterns, not worth a matcher's time.
 */
export function excludeMatcher(patterns: string[]): ExcludeMatcher {
  if (patterns.length === 0) return () => false;
  const ig = ignore().add(patterns);
  return (rel, isDir) => ig.ignores(isDir ? `${rel}/` : rel);
}
