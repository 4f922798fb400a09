// The progress bar: silent off a terminal, nothing for short transfers, then files, bytes,
// rate and ETA on one redrawn line, cleared at the end.
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { Progress } from './progress.js';

function fakeStream(isTTY: boolean): NodeJS.WriteStream & { text: string } {
  const s = new PassThrough() as unknown as NodeJS.WriteStream & { text: string };
  s.text = '';
  s.isTTY = isTTY;
  s.columns = 120;
  s.write = ((chunk: string) => {
    s.text += chunk;
    return true;
  }) as typeof s.write;
  return s;
}

describe('progress', () => {
  it('is silent when stderr is not a terminal', () => {
    const stream = fakeStream(false);
    let now = 0;
    const p = new Progress({ label: 'uploads: upload', stream, now: () => now });
    p.start(10, 10_000);
    for (let i = 0; i < 10; i++) {
      now += 500;
      p.tick(1, 1000);
    }
    p.done();
    assert.equal(stream.text, '');
  });

  it('draws files, bytes, rate and ETA after the first second, then clears the line', () => {
    const stream = fakeStream(true);
    let now = 1_000_000;
    const p = new Progress({ label: 'uploads: upload', stream, now: () => now });
    const text = () => stream.text; // read afresh: assert.equal would narrow stream.text's type
    p.start(4, 4 * 1024 * 1024);
    now += 500;
    p.tick(1, 1024 * 1024);
    assert.equal(text(), '', 'nothing within the first second');
    now += 1500;
    p.tick(1, 1024 * 1024);
    assert.equal(text(), '\ruploads: upload [##########..........] 2/4 files  2.0 MiB/4.0 MiB  1.0 MiB/s  ETA 0:02\x1b[K');
    p.tick(0, 10); // within 100 ms of the last draw: not redrawn
    assert.equal(text().split('\r').length, 2);
    p.done();
    assert.ok(text().endsWith('\r\x1b[2K'));
  });

  it('start() again extends the totals; meter() ticks bytes as they stream', async () => {
    const p = new Progress({ label: 'x', stream: fakeStream(false), now: () => 0 });
    p.start(1, 100);
    p.start(1, 100);
    await pipeline(Readable.from([Buffer.alloc(60), Buffer.alloc(40)]), p.meter(), new PassThrough().resume());
    p.tick(1, 0);
    assert.match(p.line(1000), /1\/2 files {2}100 B\/200 B/);
  });
});
