// Clock skew for one process: Debian's libfaketime (package `faketime`) through LD_PRELOAD
// moves what the process reads from the wall clock (Date.now, new Date) by a fixed offset.
// Monotonic clocks stay real, so timers and timeouts behave; stat() is not faked, so file
// times stay what the kernel recorded.
import { existsSync } from 'node:fs';

const CANDIDATES = [
  // The multi-threaded build: Node reads the clock from several threads.
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1',
  '/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1',
  '/usr/lib/faketime/libfaketimeMT.so.1',
];

/** The libfaketime library, or null when the `faketime` package is not installed. */
export function faketimeLib(): string | null {
  return CANDIDATES.find((p) => existsSync(p)) ?? null;
}

/** Environment that shifts a child's wall clock by `offsetMs` (whole seconds); {} for 0. */
export function faketimeEnv(offsetMs: number): NodeJS.ProcessEnv {
  const seconds = Math.round(offsetMs / 1000);
  if (seconds === 0) return {};
  const lib = faketimeLib();
  if (!lib) throw new Error('clock skew needs libfaketime: apt-get install -y faketime');
  return {
    LD_PRELOAD: lib,
    FAKETIME: `${seconds > 0 ? '+' : ''}${seconds}`,
    FAKETIME_DONT_FAKE_MONOTONIC: '1',
    NO_FAKE_STAT: '1',
  };
}
