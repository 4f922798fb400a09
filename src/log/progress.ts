/**
 * A one-line progress bar on stderr for long transfers (a first publish of a large tree, a
 * bootstrap download): files and bytes done, rate and ETA. Silent when stderr is not a
 * terminal (cron, systemd, a pipe) or FEDSYNC_NO_PROGRESS is set, and for transfers that end
 * within the first second, so a quiet minute-by-minute cycle never draws anything.
 */
import { Transform } from 'node:stream';

export interface ProgressOptions {
  /** Shown before the bar: `uploads: upload`. */
  label: string;
  stream?: NodeJS.WriteStream;
  /** Draw even when the stream is not a TTY (tests). */
  force?: boolean;
  /** Nothing is drawn before this much time has passed (default 1 s). */
  delayMs?: number;
  now?: () => number;
}

const REDRAW_MS = 100;

export class Progress {
  private readonly stream: NodeJS.WriteStream;
  private readonly enabled: boolean;
  private readonly delayMs: number;
  private readonly now: () => number;
  private total = { files: 0, bytes: 0 };
  private doneSoFar = { files: 0, bytes: 0 };
  private started = 0;
  private lastDraw = 0;
  private drawn = false;

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.enabled = opts.force === true || (Boolean(this.stream.isTTY) && !process.env.FEDSYNC_NO_PROGRESS);
    this.delayMs = opts.delayMs ?? 1000;
    this.now = opts.now ?? Date.now;
  }

  /** Begins (or, called again, extends) a transfer of this many files and bytes. */
  start(totalFiles: number, totalBytes: number): void {
    if (this.started === 0) this.started = this.now();
    this.total.files += totalFiles;
    this.total.bytes += totalBytes;
  }

  /** Records progress: files finished and bytes moved since the last tick. */
  tick(files: number, bytes: number): void {
    this.doneSoFar.files += files;
    this.doneSoFar.bytes += bytes;
    const t = this.now();
    if (!this.enabled || t - this.started < this.delayMs || t - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = t;
    this.draw(t);
  }

  /** A pass-through stream that ticks bytes as they flow (for one large file); files are ticked by the caller. */
  meter(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        this.tick(0, chunk.length);
        cb(null, chunk);
      },
    });
  }

  /** Ends the transfer: the line is cleared, leaving the terminal as it was. */
  done(): void {
    if (this.drawn) this.stream.write('\r\x1b[2K');
    this.drawn = false;
  }

  /** The line as it would be drawn now (also used by tests). */
  line(t = this.now()): string {
    const { files, bytes } = this.doneSoFar;
    const secs = Math.max(0.001, (t - this.started) / 1000);
    const rate = bytes / secs;
    const share = this.total.bytes > 0 ? bytes / this.total.bytes : this.total.files > 0 ? files / this.total.files : 0;
    const left = rate > 0 && this.total.bytes > bytes ? (this.total.bytes - bytes) / rate : files > 0 && this.total.files > files ? ((this.total.files - files) * secs) / files : 0;
    const width = 20;
    const full = Math.min(width, Math.floor(Math.min(1, share) * width));
    const bar = '#'.repeat(full) + '.'.repeat(width - full);
    return `${this.opts.label} [${bar}] ${files}/${this.total.files} files  ${size(bytes)}/${size(this.total.bytes)}  ${size(rate)}/s  ETA ${clock(left)}`;
  }

  private draw(t: number): void {
    const cols = this.stream.columns || 100;
    this.stream.write(`\r${this.line(t).slice(0, cols - 1)}\x1b[K`);
    this.drawn = true;
  }
}

function size(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${Math.round(n)} B` : `${n.toFixed(1)} ${units[i]}`;
}

function clock(secs: number): string {
  const s = Math.round(secs);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}
