/** A terminal for the console tests: a tmux server of our own runs a program in a pseudo-terminal, and its screen is read as displayed. */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** One tmux server of our own (its own socket), one session in it. */
export class Tmux {
  readonly socket = `shoal-test-${process.pid}-${randomBytes(3).toString('hex')}`;

  private tmux(args: string[]): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync('tmux', ['-L', this.socket, ...args], { encoding: 'utf8' });
    return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  }

  start(command: string, cwd: string, columns: number, rows: number): void {
    const r = this.tmux(['-f', '/dev/null', 'new-session', '-d', '-s', 'console', '-x', String(columns), '-y', String(rows), '-c', cwd, command]);
    if (r.status !== 0) throw new Error(`tmux new-session: ${r.stderr}`);
    // Keep the pane when the program ends, so its last screen can still be read.
    this.tmux(['set-option', '-t', 'console', 'remain-on-exit', 'on']);
  }

  /** Type text, then Enter. */
  type(text: string): void {
    this.tmux(['send-keys', '-t', 'console', '-l', text]);
    this.tmux(['send-keys', '-t', 'console', 'Enter']);
  }

  /** The screen as displayed: one string per row, trailing blanks removed. */
  screen(): string[] {
    return this.tmux(['capture-pane', '-p', '-t', 'console']).stdout.split('\n').map((l) => l.trimEnd());
  }

  /** Whether the program in the pane has ended, and how. */
  ended(): { dead: boolean; status: number | null } {
    const out = this.tmux(['display-message', '-p', '-t', 'console', '#{pane_dead} #{pane_dead_status}']).stdout.trim().split(' ');
    return { dead: out[0] === '1', status: out[1] ? Number(out[1]) : null };
  }

  kill(): void {
    this.tmux(['kill-server']);
  }
}
