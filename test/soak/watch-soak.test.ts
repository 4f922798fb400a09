// The long-running `fedsync watch` soak (watch-soak.ts), only when asked for: it takes
// FEDSYNC_SOAK_WATCH_MINUTES minutes (also `npm run test:soak -- --watch-minutes M`).
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { watchSoak } from './watch-soak.js';

const minutes = Number(process.env.FEDSYNC_SOAK_WATCH_MINUTES ?? 0);

it(
  `watch daemons under continuous change and faults for ${minutes || 'M'} minutes: no memory growth, never stuck, nothing lost`,
  { skip: minutes > 0 ? false : 'set FEDSYNC_SOAK_WATCH_MINUTES=M to run it', timeout: (minutes + 5) * 60_000 },
  async (t) => {
    const ok = await watchSoak({ minutes, rgw: process.env.FEDSYNC_SOAK_RGW === '1', log: (s) => t.diagnostic(s) });
    assert.ok(ok, 'the watch soak failed; see the diagnostics above');
  },
);
