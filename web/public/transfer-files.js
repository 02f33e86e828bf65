// The files of a multi-file download, in its open detail row: a checkbox each (the files to
// fetch; only while the download runs or is paused), its path, size and how much of it is
// verified, and a link that opens it (verified pieces stream while the rest downloads).
// The rows are made once and updated in place at every poll: a folder may hold thousands.
import { $, $$, el, size, pct } from './app.js';

/** The section the detail row shows for a folder. */
export function filesSection() {
  return el(
    'div',
    { class: 'files-section' },
    el('h3', {}, 'Files'),
    el('div', { class: 'peer-table' }, el('div', { class: 'table-wrap file-list' }, el('table', { class: 'data' }, el('tbody', { class: 'file-rows' })))),
  );
}

/** The indices of the files checked now in `detail`. */
export function selectedIndices(detail) {
  return $$('input.file-pick', detail)
    .filter((b) => b.checked)
    .map((b) => Number(b.dataset.index));
}

/** Show `full.fileList`; `force` re-reads the checkboxes too (after a change was sent or refused). */
export function fillFiles(detail, full, force = false) {
  const rows = $('.file-rows', detail);
  if (!rows) return;
  const changeable = full.state === 'downloading' || full.state === 'paused';
  if (rows.children.length !== full.fileList.length) rows.replaceChildren(...full.fileList.map((f) => fileRow(f)));
  full.fileList.forEach((f, i) => {
    const tr = rows.children[i];
    const box = $('input.file-pick', tr);
    // A box the user just clicked keeps what they chose until the answer comes.
    if (force || !detail._picking) box.checked = f.selected;
    box.disabled = !changeable;
    tr.classList.toggle('skipped', !f.selected);
    const done = f.size === 0 ? 1 : f.verified / f.size;
    const text = f.selected ? pct(done) : 'skipped';
    const cell = $('.file-done', tr);
    if (cell.textContent !== text) cell.textContent = text;
  });
}

function fileRow(f) {
  const id = `pick-${Math.random().toString(36).slice(2)}-${f.index}`;
  return el(
    'tr',
    { data: { index: String(f.index) } },
    el('td', { class: 'pick' }, el('input', { type: 'checkbox', class: 'file-pick', id, data: { index: String(f.index) }, 'aria-label': `Download ${f.path}` })),
    el('td', { class: 'mono file-path' }, el('label', { for: id }, f.path)),
    el('td', { class: 'right num nowrap' }, size(f.size)),
    el('td', { class: 'right num nowrap file-done' }, ''),
    el('td', { class: 'right' }, el('a', { href: f.contentUrl, target: '_blank', rel: 'noopener', title: 'Open (verified pieces are served at once)' }, 'open')),
  );
}
