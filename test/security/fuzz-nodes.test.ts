// Fuzzing real nodes with a hostile peer (DESIGN.md rule 4, "remote input is untrusted"), with
// fast-check: random and adversarial heads, segments, blobs and snapshots, written straight
// into the store (fuzz-case.ts).
//
// Node level, 300 cases at the default scale, about a minute: a real node (runCycle
// in-process, file:// store, plain 200 and encrypted 100) receives a hostile peer's heads,
// segments, blobs and snapshots, beside an honest peer publishing at the same time; some cases
// also have a hostile bucket writer tamper with the honest peer's objects, or a fresh node
// bootstrap from a hostile snapshot. After two cycles: nothing outside the root changed (a
// sentinel directory beside it keeps its hash, the parent directory gains nothing); no cycle
// threw, and none failed; every file in the root holds content some party stored under its
// true digest; no set-id bits; no symlink resolves outside the root; each rejection is one log
// line and one count in stats.rejected, a rejected record is not reported again the next
// cycle, a paused peer at most once per cycle; the honest peer's files arrived; the clock was
// not dragged into the future.
//
// Reproducible: the seed is printed (`# fuzz seed`); FEDSYNC_FUZZ_SEED=<seed> replays the run;
// FEDSYNC_FUZZ_RUNS=<n> scales the whole suite, these cases included (the split is in
// fuzz-gen.ts). FEDSYNC_FUZZ_AVOID_KNOWN=1 keeps the cases away from the bugs listed in
// fuzz-regressions.test.ts, to look for others while they are open. FEDSYNC_FUZZ_KEEP=1 keeps
// each case's directory (its path is in the failure message).
import fc from 'fast-check';
import { after, describe, it } from 'node:test';
import { arbNodeCase, runNodeCase, TALLY, useTemplates } from './fuzz-case.js';
import { announce, checkNothingEscaped, fcParams, runs } from './fuzz-gen.js';

announce(`${runs(200) + runs(100)} node-level cases`);

describe('fuzz: hostile peers against real nodes (node level)', () => {
  after(() => console.log(`# node cases: ${TALLY.cases}; the receiving node applied ${TALLY.applied}, deleted ${TALLY.deleted}, made ${TALLY.conflicts} conflict copies, rejected ${TALLY.rejected}`));
  const templates = useTemplates();

  it(`plain store: ${runs(200)} cases`, async () => {
    await fc.assert(
      fc.asyncProperty(arbNodeCase(false), (c) => runNodeCase(templates.plain!, c)),
      fcParams(20, runs(200), { shrink: false }),
    );
  });

  it(`encrypted store: ${runs(100)} cases (hostile peers with and without the passphrase)`, async () => {
    await fc.assert(
      fc.asyncProperty(arbNodeCase(true), (c) => runNodeCase(templates.encrypted!, c)),
      fcParams(21, runs(100), { shrink: false }),
    );
  });
});

checkNothingEscaped();
