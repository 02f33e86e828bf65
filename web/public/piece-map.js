// The piece map of a download on a <canvas>: verified pieces in the accent colour, missing
// ones pale; when the pieces do not fit, each cell stands for several (shaded by how many
// of them are here).

/** Piece map: one cell per piece while they fit, else cells that each stand for several pieces. */
export function drawPieces(canvas, base64, n) {
  const bytes = Uint8Array.from(atob(base64 || ''), (c) => c.charCodeAt(0));
  const has = (i) => ((bytes[i >> 3] ?? 0) >> (7 - (i & 7))) & 1;
  const w = canvas.clientWidth;
  if (w === 0 || n === 0) return;
  const maxH = 96;
  let cell = 14;
  let gap = 2;
  let cols = 1;
  let rows = 1;
  for (const c of [16, 14, 12, 10, 8, 6, 5, 4]) {
    cell = c;
    gap = c >= 8 ? 2 : 1;
    cols = Math.max(1, Math.floor((w + gap) / (cell + gap)));
    rows = Math.ceil(n / cols);
    if (rows * (cell + gap) - gap <= maxH) break;
  }
  rows = Math.min(rows, Math.max(1, Math.floor((maxH + gap) / (cell + gap))));
  const per = Math.ceil(n / (cols * rows));
  const cells = Math.ceil(n / per);
  rows = Math.ceil(cells / cols);
  const hgt = rows * (cell + gap) - gap;
  const dpr = window.devicePixelRatio || 1;
  canvas.style.height = hgt + 'px';
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(hgt * dpr);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const css = getComputedStyle(document.documentElement);
  const haveColor = css.getPropertyValue('--piece-have').trim();
  const missColor = css.getPropertyValue('--piece-miss').trim();
  const radius = cell >= 8 ? 2 : 1;
  for (let k = 0; k < cells; k++) {
    let got = 0;
    const from = k * per;
    const to = Math.min(n, from + per);
    for (let i = from; i < to; i++) got += has(i);
    const x = (k % cols) * (cell + gap);
    const y = Math.floor(k / cols) * (cell + gap);
    ctx.globalAlpha = 1;
    ctx.fillStyle = missColor;
    ctx.beginPath();
    ctx.roundRect(x, y, cell, cell, radius);
    ctx.fill();
    if (got > 0) {
      ctx.globalAlpha = got === to - from ? 1 : 0.25 + (0.6 * got) / (to - from);
      ctx.fillStyle = haveColor;
      ctx.fill();
    }
  }
  ctx.globalAlpha = 1;
  canvas.title = per > 1 ? `each cell is ${per} pieces` : `${n} pieces`;
}
