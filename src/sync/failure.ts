import { PreconditionFailedError, StoreError } from '../store/errors.js';
import { DeletionRailError } from './rail.js';

/**
 * What monitoring needs to know of a failed cycle beyond its message: the kinds are read off
 * the error's types along its `cause` chain (steps wrap what they catch), never its wording.
 */
export interface FailureKinds {
  /** The max_delete rail refused the cycle's deletions (DESIGN rule 5). */
  railTripped: boolean;
  /**
   * The store could not be reached or answered with errors (network, 5xx after the retries,
   * credentials, a missing bucket, an unusable store directory). A conditional write that lost
   * its race is not one: the store answered as it should.
   */
  storeUnreachable: boolean;
}

export function failureKinds(err: unknown): FailureKinds {
  const chain = causes(err);
  return {
    railTripped: chain.some((e) => e instanceof DeletionRailError),
    storeUnreachable: chain.some((e) => e instanceof StoreError && !(e instanceof PreconditionFailedError)),
  };
}

/** The error and its causes, outermost first (bounded: a cause chain could loop). */
function causes(err: unknown): unknown[] {
  const out: unknown[] = [];
  for (let e = err; e instanceof Error && out.length < 16 && !out.includes(e); e = e.cause) out.push(e);
  return out;
}
