// Files: the table follows `file-added` / `file-changed` / `file-removed`; files dropped on the page or
// chosen with the button go up one at a time as raw bodies (PUT /api/files?name=...), so the
// server streams them to disk; each shows its progress and, on failure, the server's message.
import { $, el, icon, on, reloadOnConnect, initial, toast, size, short, plural, holders, upsertRow, removeRow } from './app.js';

const files = new Map();
for (const f of (initial() || {}).files || []) files.set(f.infohash, f);
const tbody = $('#files');

function row(f) {
  return el(
    'tr',
    { data: { infohash: f.infohash } },
    el('td', { class: 'name-cell' }, el('a', { class: 'primary', href: f.contentUrl, target: '_blank', rel: 'noopener' }, f.name)),
    el('td', { class: 'right num nowrap' }, size(f.size)),
    el(
      'td',
      { class: 'hide-sm' },
      el(
        'span',
        { class: 'hash' },
        el('span', { class: 'mono', title: f.infohash }, short(f.infohash)),
        el('button', { class: 'btn ghost sm icon-only', type: 'button', data: { copy: f.infohash }, title: 'Copy infohash', 'aria-label': 'Copy infohash' }, icon('copy')),
      ),
    ),
    el('td', { class: 'hide-xs holders' + (f.holders === 0 ? ' muted' : '') }, holders(f.holders)),
    el(
      'td',
      { class: 'actions' },
      el('button', { class: 'btn sm', type: 'button', data: { copy: f.magnet }, title: 'Copy the magnet link' }, icon('magnet'), el('span', { class: 'hide-xs' }, 'Magnet')),
      el('a', { class: 'btn sm', href: f.torrentUrl, download: true, title: 'Download the .torrent file' }, icon('download'), el('span', { class: 'hide-xs' }, '.torrent')),
      el('a', { class: 'btn sm', href: f.contentUrl, target: '_blank', rel: 'noopener', title: 'Open in the browser' }, icon('open'), el('span', { class: 'hide-xs' }, 'Open')),
    ),
  );
}

const sel = (h) => `tr[data-infohash="${h}"]`;
const byName = (a, b) => a.name.localeCompare(b.name);

function refresh() {
  $('#files-summary').textContent = plural(files.size, 'shared file');
  const empty = tbody.querySelector('.empty-row');
  if (files.size === 0 && !empty)
    tbody.append(el('tr', { class: 'empty-row' }, el('td', { colspan: '5' }, el('strong', {}, 'Nothing shared yet.'), el('br'), 'Drop a file above, or put files in the shared folder.')));
  if (files.size > 0 && empty) empty.remove();
}

function drawAll() {
  tbody.replaceChildren(...[...files.values()].sort(byName).map(row));
  refresh();
}

on('file-added', (f) => {
  files.set(f.infohash, f);
  const r = upsertRow(tbody, sel(f.infohash), row(f));
  // keep the name order: move the row before the first one that sorts after it
  const next = [...tbody.querySelectorAll('tr[data-infohash]')].find((tr) => tr !== r && files.get(tr.dataset.infohash) && byName(files.get(tr.dataset.infohash), f) > 0);
  if (next) tbody.insertBefore(r, next);
  refresh();
});
on('file-changed', (f) => {
  if (!files.has(f.infohash)) return;
  files.set(f.infohash, f);
  upsertRow(tbody, sel(f.infohash), row(f), false);
});
on('file-removed', ({ infohash }) => {
  files.delete(infohash);
  removeRow(tbody.querySelector(sel(infohash)), refresh);
});
reloadOnConnect('/api/files', (res) => {
  files.clear();
  for (const f of res.files) files.set(f.infohash, f);
  drawAll();
});

// ---- upload ----------------------------------------------------------------------------------

const uploads = $('#uploads');
const queue = [];
let busy = false;

function enqueue(list) {
  for (const file of list) {
    const bar = el('progress', { class: 'bar', max: '1', value: '0' });
    const state = el('span', { class: 'state' }, 'waiting');
    const item = el('li', { class: 'upload' }, el('span', { class: 'name', title: file.name }, file.name), bar, state);
    uploads.append(item);
    queue.push({ file, item, bar, state });
  }
  if (!busy) void next();
}

async function next() {
  const job = queue.shift();
  if (!job) {
    busy = false;
    return;
  }
  busy = true;
  try {
    await send(job);
    job.item.classList.add('ok');
    job.bar.value = 1;
    job.bar.className = 'bar done';
    job.state.textContent = 'shared · ' + size(job.file.size);
    setTimeout(() => removeRow(job.item), 6000);
  } catch (err) {
    job.item.classList.add('error');
    job.bar.className = 'bar failed';
    job.state.textContent = err.message;
    job.state.title = err.message;
    toast(err.message.includes(job.file.name) ? err.message : `${job.file.name}: ${err.message}`);
  }
  void next();
}

/** XMLHttpRequest rather than fetch, for upload progress. */
function send({ file, bar, state }) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', '/api/files?name=' + encodeURIComponent(file.name));
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.setRequestHeader('Accept', 'application/json');
    const started = Date.now();
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      bar.value = e.total ? e.loaded / e.total : 0;
      const secs = (Date.now() - started) / 1000;
      state.textContent = `${size(e.loaded)} of ${size(e.total)}` + (secs > 0.5 ? ` · ${size(e.loaded / secs)}/s` : '');
    };
    xhr.upload.onload = () => {
      bar.value = 1;
      state.textContent = 'hashing…';
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve();
      let message = `${xhr.status} ${xhr.statusText}`;
      try {
        message = JSON.parse(xhr.responseText).error || message;
      } catch {
        /* not JSON */
      }
      reject(new Error(message));
    };
    xhr.onerror = () => reject(new Error('the upload was cut off'));
    xhr.onabort = () => reject(new Error('the upload was cancelled'));
    state.textContent = 'uploading…';
    xhr.send(file);
  });
}

const input = $('#file-input');
input.addEventListener('change', () => {
  enqueue([...input.files]);
  input.value = '';
});

const zone = $('#dropzone');
let depth = 0;
const hasFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes('Files');
document.addEventListener('dragenter', (e) => {
  if (!hasFiles(e)) return;
  depth++;
  zone.classList.add('over');
});
document.addEventListener('dragleave', () => {
  if (--depth <= 0) {
    depth = 0;
    zone.classList.remove('over');
  }
});
document.addEventListener('dragover', (e) => {
  if (hasFiles(e)) e.preventDefault();
});
document.addEventListener('drop', (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  depth = 0;
  zone.classList.remove('over');
  const list = [];
  let folders = 0;
  for (const item of e.dataTransfer.items) {
    if (item.kind !== 'file') continue;
    const entry = item.webkitGetAsEntry ? item.webkitGetAsEntry() : null;
    if (entry && entry.isDirectory) folders++;
    else if (item.getAsFile()) list.push(item.getAsFile());
  }
  if (folders > 0) toast('Folders cannot be dropped here: drop the files inside them, or copy the folder into the shared folder.');
  enqueue(list);
});

drawAll();
