// Where soak trials meet: s3rver (default, fast to start) or the Ceph RGW of
// test/support/rgw.sh. Each trial puts its own fault proxy in front.
import { rgwTargetFromEnv, type S3Target } from '../support/s3.js';
import { startS3rver } from '../support/s3rver.js';

export interface SoakServer {
  target: S3Target;
  stop(): Promise<void>;
}

export async function startSoakServer(useRgw: boolean): Promise<SoakServer> {
  let target: S3Target;
  let stopTarget = async () => {};
  if (useRgw) {
    const rgw = rgwTargetFromEnv();
    if (!rgw) throw new Error('RGW asked for, but FEDSYNC_TEST_RGW_* are not set: eval "$(bash test/support/rgw.sh start DIR)"');
    target = rgw;
  } else {
    const s = await startS3rver();
    target = s;
    stopTarget = () => s.stop();
  }
  return { target, stop: stopTarget };
}

/** FEDSYNC_SOAK_SEED, when set: the one seed to replay. */
export function replaySeed(): number | null {
  const env = process.env.FEDSYNC_SOAK_SEED;
  if (env === undefined || env === '') return null;
  const n = Number(env);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`FEDSYNC_SOAK_SEED=${env} is not a non-negative integer`);
  return n >>> 0;
}
