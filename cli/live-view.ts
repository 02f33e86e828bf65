import readline from 'node:readline';
import type { DownloadInfo } from '../network/index.js';
import { progressLine } from './format.js';

/** Bars are redrawn at most this often (a line of output redraws them at once). */
const REDRAW_MS = 250;
/** A finished download's bar stays this long, showing 100%, then goes. */
const LINGER_MS = 2000;

/**
 * The bottom of the terminal, owned by one object: output lines scroll above, then one
 * progress bar per active download, then the console's prompt with what is being typed.
 * Everything that reaches the terminal while the console runs (command output, events, the
 * node's log) goes through `log`, which erases that region, prints the line, and draws the
 * region again below it, so nothing is ever written over the bars or the prompt.
 *
 * The region is erased by moving the cursor up over exactly the rows drawn: the bars (one
 * row each, never wider than the terminal) and the prompt's rows above the cursor, which
 * readline reports (`getCursorPos`). Needs a terminal that understands cursor movement
 * (main.ts uses plain lines when TERM=dumb or stdout is not a terminal).
 */
export class LiveView {
  private rl: readline.Interface | null = null;
  private readonly bars = new Map<string, { info: DownloadInfo; until: number }>();
  /** Bar rows on screen right above the prompt (or above the cursor without a console). */
  private drawn = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly out: NodeJS.WriteStream = process.stdout) {
    out.on('resize', () => this.draw([]));
  }

  /** The console's line editor: its prompt is drawn below the bars from now on. */
  attach(rl: readline.Interface): void {
    this.rl = rl;
    // A closed line editor (quit, Ctrl-C, Ctrl-D) has no prompt to draw any more.
    rl.once('close', () => {
      if (this.rl === rl) this.rl = null;
    });
    this.draw([]);
  }

  /** One line (or several, separated by newlines) of output, above the bars. */
  log(text: string): void {
    this.draw(text.split('\n'));
  }

  /**
   * The user pressed Enter: readline has moved below the line typed, which must scroll up
   * with the output instead of staying between the bars and the next prompt.
   */
  submitted(line: string): void {
    if (this.stopped || !this.rl) return;
    const echoed = `${this.rl.getPrompt()}${line}`;
    const rows = Math.max(1, Math.ceil(echoed.length / this.columns()));
    readline.moveCursor(this.out, 0, -rows);
    this.draw([echoed], false);
  }

  /** A download's progress: its bar appears, moves, and goes a moment after it ends. */
  update(d: DownloadInfo): void {
    const ended = d.state === 'done' || d.state === 'failed';
    const old = this.bars.get(d.infohash);
    if (ended && !old) return;
    this.bars.set(d.infohash, { info: d, until: ended ? Date.now() + LINGER_MS : Infinity });
    this.schedule();
  }

  /** A download left the list (cancelled): its bar goes. */
  remove(infohash: string): void {
    if (this.bars.delete(infohash)) this.schedule();
  }

  /** Erase the bars and the prompt, leaving the cursor at the start of a fresh line. */
  stop(): void {
    if (this.stopped) return;
    this.erase();
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private columns(): number {
    return this.out.columns > 0 ? this.out.columns : 80;
  }

  private schedule(): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.draw([]);
      if ([...this.bars.values()].some((b) => b.until !== Infinity)) this.schedule();
    }, REDRAW_MS);
    this.timer.unref();
  }

  /** Move to the first row of the region and clear it to the end of the screen. */
  private erase(promptRows = true): void {
    const above = this.drawn + (promptRows && this.rl ? this.rl.getCursorPos().rows : 0);
    if (above > 0) readline.moveCursor(this.out, 0, -above);
    readline.cursorTo(this.out, 0);
    readline.clearScreenDown(this.out);
    this.drawn = 0;
  }

  private draw(lines: string[], promptRows = true): void {
    if (this.stopped) {
      for (const l of lines) this.out.write(`${l}\n`);
      return;
    }
    this.erase(promptRows);
    const now = Date.now();
    for (const [h, b] of this.bars) if (b.until <= now) this.bars.delete(h);
    const width = this.columns();
    let text = lines.map((l) => `${l}\n`).join('');
    for (const { info } of this.bars.values()) text += `${progressLine(info, width)}\n`;
    this.out.write(text);
    this.drawn = this.bars.size;
    if (this.rl) {
      // readline redraws its line from the row its cursor is on: give it that many rows below us.
      const rows = this.rl.getCursorPos().rows;
      if (rows > 0) {
        this.out.write('\n'.repeat(rows));
      }
      this.rl.prompt(true);
    }
  }
}
