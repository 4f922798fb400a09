/** What one doctor check says: a verdict, what it saw, and (when not ok) what to do. */
export type Verdict = 'ok' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  verdict: Verdict;
  detail: string;
  fix?: string;
}

export interface Check {
  /** `node` for the node-wide checks, else the set's name. */
  scope: string;
  name: string;
  run(): CheckResult | Promise<CheckResult>;
}

export const ok = (detail: string): CheckResult => ({ verdict: 'ok', detail });
export const warn = (detail: string, fix?: string): CheckResult => ({ verdict: 'warn', detail, fix });
export const fail = (detail: string, fix?: string): CheckResult => ({ verdict: 'fail', detail, fix });
export const skip = (detail: string): CheckResult => ({ verdict: 'skip', detail });

/** The message of anything thrown, on one line. */
export function why(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ');
}
