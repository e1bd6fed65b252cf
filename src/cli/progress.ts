// A progress line on stderr: count, rate and ETA, redrawn at most ~10 times a second on a
// terminal; on a pipe or in CI it prints a plain line every few seconds instead.
export class Progress {
  private done_ = 0;
  private readonly t0 = performance.now();
  private lastDraw = 0;
  private readonly tty: boolean;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly unit = 'steps',
    private readonly stream: { write(s: string): unknown; isTTY?: boolean } = process.stderr,
  ) {
    this.tty = !!stream.isTTY;
  }

  tick(n = 1, extra = ''): void {
    this.done_ += n;
    const now = performance.now();
    const interval = this.tty ? 100 : 5000;
    if (now - this.lastDraw < interval && this.done_ < this.total) return;
    this.lastDraw = now;
    this.draw(extra);
  }

  private draw(extra: string): void {
    const secs = (performance.now() - this.t0) / 1000;
    const rate = this.done_ / Math.max(secs, 1e-9);
    const left = rate > 0 ? (this.total - this.done_) / rate : Infinity;
    const pct = this.total ? Math.floor((100 * this.done_) / this.total) : 100;
    const width = 24;
    const fill = Math.round((width * pct) / 100);
    const bar = `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}]`;
    const line = `${this.label} ${bar} ${this.done_}/${this.total} ${this.unit} ${rate.toFixed(rate < 10 ? 2 : 0)}/s ETA ${formatSecs(left)}${extra ? ` ${extra}` : ''}`;
    this.stream.write(this.tty ? `\r${line}\x1b[K` : `${line}\n`);
  }

  done(extra = ''): void {
    if (this.tty || this.done_ === 0) this.draw(extra);
    if (this.tty) this.stream.write('\n');
  }
}

export function formatSecs(s: number): string {
  if (!Number.isFinite(s)) return '--';
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
