// The Add control on every page, like qBittorrent's "Add torrent": a magnet link, an infohash or
// a name (POST /api/downloads as JSON), or .torrent files, chosen in the dialog or dropped
// anywhere on the page (their bytes, as application/x-bittorrent: the node never opens a file
// of its own disk for it). The Files page keeps its own drop (files to share) except on the
// open dialog.
import { $, $$, el, api, toast } from './app.js';

const dialog = $('#add-dialog');
const form = $('#add-form');
const input = $('#add-target');
const picker = $('#add-file');
const drop = $('#add-drop');
const errorBox = $('#add-error');
const busy = $('#add-busy');
const busyText = $('#add-busy-text');
const submit = $('#add-submit');
const overlay = $('#drop-overlay');

const isTorrent = (f) => /\.torrent$/i.test(f.name) || f.type === 'application/x-bittorrent';

function open() {
  showError('');
  if (!dialog.open) dialog.showModal();
  input.focus();
}

function close() {
  if (dialog.open) dialog.close();
}

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

function setBusy(text) {
  busy.hidden = !text;
  busyText.textContent = text || '';
  submit.disabled = Boolean(text);
}

/** "Downloading NAME" (or "NAME is already here: seeding it") with a link to Transfers (unless we are there). */
function started(d) {
  const onTransfers = document.body.dataset.page === 'transfers';
  const text = d.state === 'done' ? `${d.name} is already here: seeding it` : `Downloading ${d.name}`;
  toast(onTransfers ? text : el('span', {}, text, ' · ', el('a', { href: '/transfers' }, 'see Transfers')), 'ok');
}

/** POST a .torrent's bytes; resolves with the download, throws with the server's reason. */
async function sendTorrent(file) {
  let res;
  try {
    res = await fetch('/api/downloads', { method: 'POST', headers: { 'Content-Type': 'application/x-bittorrent', Accept: 'application/json' }, body: file });
  } catch {
    throw new Error('The node does not answer. Is it still running?');
  }
  const json = await res.json().catch(() => null);
  if (!res.ok) throw new Error((json && json.error) || `${res.status} ${res.statusText}`);
  return json;
}

/** Add every .torrent of `files`; others are refused with a word on where they belong. */
async function addTorrents(files) {
  const list = [...files];
  const torrents = list.filter(isTorrent);
  const others = list.length - torrents.length;
  if (others > 0) {
    const what = others === 1 ? `${list.find((f) => !isTorrent(f)).name} is not a .torrent file` : `${others} files are not .torrent files`;
    const message = `${what}: only .torrent files can be added here. To share a file, drop it on the Files page.`;
    if (dialog.open) showError(message);
    else toast(message);
  }
  if (torrents.length === 0) return;
  const failures = [];
  for (const f of torrents) {
    setBusy(`Adding ${f.name}…`);
    try {
      started(await sendTorrent(f));
    } catch (err) {
      failures.push(`${f.name}: ${err.message}`);
    }
  }
  setBusy('');
  if (failures.length === 0) {
    if (others === 0) close();
    return;
  }
  if (dialog.open) showError(failures.join('\n'));
  else for (const f of failures) toast(f);
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const target = input.value.trim();
  if (!target) {
    showError('Paste a magnet link or an infohash, type a file name, or choose a .torrent file.');
    return input.focus();
  }
  showError('');
  setBusy(/^magnet:|^[0-9a-f]{40}$/i.test(target) ? 'Asking the network for it…' : 'Looking for it…');
  try {
    const d = await api('POST', '/api/downloads', { target });
    input.value = '';
    close();
    started(d);
  } catch (err) {
    showError(err.message);
  } finally {
    setBusy('');
  }
});

picker.addEventListener('change', async () => {
  const files = [...picker.files];
  picker.value = '';
  showError('');
  await addTorrents(files);
});

for (const b of $$('[data-add-open]')) b.addEventListener('click', open);
dialog.addEventListener('click', (e) => {
  const target = e.target instanceof Element ? e.target : null;
  if (target && target.closest('[data-add-close]')) close();
  // A click on the backdrop (outside the form) closes it too.
  else if (target === dialog) close();
});
dialog.addEventListener('close', () => setBusy(''));

// ---- dropping .torrent files -------------------------------------------------------------------

const hasFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes('Files');
// The Files page drops files to share them; there only the open dialog takes .torrent files.
const pageTakesDrops = document.body.dataset.page !== 'files';
let depth = 0;

drop.addEventListener('dragover', (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  e.stopPropagation();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
dialog.addEventListener('drop', (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  e.stopPropagation(); // not the Files page's upload as well
  drop.classList.remove('over');
  void addTorrents(e.dataTransfer.files);
});
dialog.addEventListener('dragover', (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  e.stopPropagation();
});

if (pageTakesDrops) {
  document.addEventListener('dragenter', (e) => {
    if (!hasFiles(e) || dialog.open) return;
    depth++;
    overlay.hidden = false;
  });
  document.addEventListener('dragleave', () => {
    if (--depth <= 0) {
      depth = 0;
      overlay.hidden = true;
    }
  });
  document.addEventListener('dragover', (e) => {
    if (hasFiles(e)) e.preventDefault();
  });
  document.addEventListener('drop', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    overlay.hidden = true;
    void addTorrents(e.dataTransfer.files);
  });
}
