// Transfers: one row per download, updated in place from the `download` events (at most
// four a second each). Pause / resume / cancel call the API; cancel asks first, inline; a
// finished (or failed) one is removed after a dialog asks whether to keep or delete its file.
// An open row shows the piece map and the peers, polled from GET /api/downloads/:infohash
// once a second while it stays open; for a multi-file torrent also its files, each with a
// checkbox (PATCH /api/downloads/:infohash chooses the files to fetch) and its own link.
import { $, $$, el, icon, api, on, reloadOnConnect, initial, toast, size, rate, plural, short, timeAgo, badge, progressLine, progressSub, setProgress } from './app.js';
import { drawPieces } from './piece-map.js';
import { filesSection, fillFiles, selectedIndices } from './transfer-files.js';
import { askRemove } from './remove.js';

const downloads = new Map();
for (const d of (initial() || {}).downloads || []) downloads.set(d.infohash, d);
const tbody = $('#transfers');
const sel = (h) => `tr.xfer[data-infohash="${h}"]`;

// ---- rows ------------------------------------------------------------------------------------

function row(d) {
  const toggle = el('button', { class: 'toggle', type: 'button', 'aria-expanded': 'false', 'aria-label': 'Show details', title: 'Pieces and peers' }, icon('chevron'));
  const tr = el(
    'tr',
    { class: 'xfer', data: { infohash: d.infohash } },
    el('td', { class: 'toggle-cell' }, toggle),
    el('td', { class: 'name-cell' }, el('a', { class: 'primary name-link', target: '_blank', rel: 'noopener' }), el('div', { class: 'secondary status-line' })),
    el('td', { class: 'progress-cell' }, progressLine(d), el('div', { class: 'progress-sub' })),
    el('td', { class: 'right num nowrap hide-xs speed' }, el('div', { class: 'down' }), el('div', { class: 'muted small up' })),
    el('td', { class: 'right num hide-md peers' }),
    el('td', { class: 'actions' }),
  );
  update(tr, d);
  return tr;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function update(tr, d) {
  const prev = tr._d;
  tr._d = d;
  const [, nameCell, progressCell, speed, peersCell, actions] = tr.children;
  const link = nameCell.firstChild;
  setText(link, d.name);
  // A folder is opened one file at a time, from its detail.
  if (d.multiFile) link.removeAttribute('href');
  else if (link.getAttribute('href') !== d.contentUrl) link.setAttribute('href', d.contentUrl);
  link.title = d.multiFile ? '' : d.state === 'done' ? 'Open in the browser' : 'Open now: the verified pieces are served while the rest downloads';
  const sub = nameCell.lastChild;
  if (!prev || prev.state !== d.state || prev.error !== d.error || prev.selectedFiles !== d.selectedFiles) {
    const files = d.multiFile ? [el('span', { class: 'files-count' }, d.selectedFiles === d.files ? plural(d.files, 'file') : `${d.selectedFiles} of ${plural(d.files, 'file')}`)] : [];
    sub.replaceChildren(badge(d.state + ' state', d.state, true), el('span', {}, size(d.size)), ...files, ...(d.error ? [el('span', { class: 'error-text' }, d.error)] : []));
  }
  setProgress(progressCell, d);
  setText(progressCell.lastChild, progressSub(d));
  setText(speed.firstChild, d.state === 'downloading' ? '↓ ' + rate(d.downloadRate) : '—');
  setText(speed.lastChild, d.uploadRate > 0 ? '↑ ' + rate(d.uploadRate) : '');
  setText(peersCell, String(d.peers));
  if (!prev || prev.state !== d.state || !actions.firstChild) {
    if (!actions.querySelector('.confirm') || d.state === 'done' || d.state === 'failed') actions.replaceChildren(...buttons(d));
  }
  const detail = tr.nextElementSibling;
  if (detail && detail.classList.contains('detail')) fillFacts(detail, d);
}

function buttons(d) {
  const b = (act, ico, label, cls = 'btn sm') => el('button', { class: cls, type: 'button', data: { act }, title: label }, icon(ico), el('span', { class: 'hide-xs' }, label));
  const x = (act, label) => el('button', { class: 'btn sm icon-only danger', type: 'button', data: { act }, title: label, 'aria-label': label }, icon('x'));
  // Done: a labelled Open button. Before that a small one: what is verified streams already.
  const open = (done) =>
    done
      ? el('a', { class: 'btn sm primary', href: d.contentUrl, target: '_blank', rel: 'noopener', title: 'Open in the browser' }, icon('open'), 'Open')
      : el(
          'a',
          {
            class: 'btn sm icon-only',
            href: d.contentUrl,
            target: '_blank',
            rel: 'noopener',
            title: 'Open now: the verified pieces are served while the rest downloads',
            'aria-label': 'Open now, while it downloads',
          },
          icon('open'),
        );
  // A folder's files open from its detail (the chevron).
  const opens = (done) => (d.multiFile ? [] : [open(done)]);
  switch (d.state) {
    case 'downloading':
      return [...opens(false), b('pause', 'pause', 'Pause'), x('cancel', 'Cancel')];
    case 'paused':
      return [...opens(false), b('resume', 'play', 'Resume'), x('cancel', 'Cancel')];
    case 'done':
      return [...opens(true), x('remove', 'Remove from the list…')];
    default:
      return [b('retry', 'download', 'Retry'), x('remove', 'Remove from the list…')];
  }
}

function emptyRow() {
  return el(
    'tr',
    { class: 'empty-row' },
    el('td', { colspan: '6' }, el('strong', {}, 'No downloads yet.'), el('br'), 'Find a file in ', el('a', { href: '/search' }, 'Search'), ' and press Download, or Add a magnet link or a .torrent file.'),
  );
}

function refresh() {
  const active = [...downloads.values()].filter((d) => d.state === 'downloading' || d.state === 'paused').length;
  $('#transfers-summary').textContent = `${plural(downloads.size, 'download')}, ${active} active`;
  const empty = tbody.querySelector('.empty-row');
  if (downloads.size === 0 && !empty) tbody.append(emptyRow());
  if (downloads.size > 0 && empty) empty.remove();
}

function upsert(d, flash = true) {
  downloads.set(d.infohash, d);
  const tr = tbody.querySelector(sel(d.infohash));
  if (tr) update(tr, d);
  else {
    const fresh = row(d);
    tbody.prepend(fresh);
    if (flash) fresh.classList.add('flash');
  }
  refresh();
}

function remove(infohash) {
  downloads.delete(infohash);
  const tr = tbody.querySelector(sel(infohash));
  if (tr) {
    close(tr);
    tr.classList.add('leaving');
    setTimeout(() => {
      tr.remove();
      refresh();
    }, 450);
  } else refresh();
}

on('download', (d) => upsert(d));
on('download-removed', ({ infohash }) => remove(infohash));
reloadOnConnect('/api/downloads', (res) => {
  const seen = new Set();
  for (const d of res.downloads.slice().sort((x, y) => x.startedAt - y.startedAt)) {
    seen.add(d.infohash);
    upsert(d, false);
  }
  for (const h of [...downloads.keys()]) if (!seen.has(h)) remove(h);
});

// ---- actions ----------------------------------------------------------------------------------

tbody.addEventListener('click', async (e) => {
  const target = e.target instanceof Element ? e.target : null;
  const toggle = target && target.closest('button.toggle');
  if (toggle) return void flip(toggle.closest('tr'));
  const btn = target && target.closest('button[data-act]');
  if (!btn) return;
  const tr = btn.closest('tr.xfer');
  const d = tr && tr._d;
  if (!d) return;
  const actions = btn.closest('td');
  const base = '/api/downloads/' + d.infohash;
  const call = async (method, url, body) => {
    for (const b of actions.querySelectorAll('button')) b.disabled = true;
    try {
      const res = await api(method, url, body);
      if (res && res.infohash === d.infohash && typeof res.progress === 'number') upsert(res);
      return true;
    } catch (err) {
      toast(`${d.name}: ${err.message}`);
      actions.replaceChildren(...buttons(tr._d));
      return false;
    }
  };
  switch (btn.dataset.act) {
    case 'pause':
      await call('POST', base + '/pause');
      break;
    case 'resume':
      await call('POST', base + '/resume');
      break;
    case 'retry':
      await call('POST', '/api/downloads', { target: d.infohash });
      break;
    case 'cancel':
      actions.replaceChildren(
        el(
          'span',
          { class: 'confirm' },
          el('span', {}, 'Cancel and delete what came?'),
          el('button', { class: 'btn sm danger solid', type: 'button', data: { act: 'cancel-yes' } }, 'Yes, cancel'),
          el('button', { class: 'btn sm', type: 'button', data: { act: 'cancel-no' } }, 'Keep'),
        ),
      );
      actions.querySelector('[data-act="cancel-no"]').focus();
      break;
    case 'cancel-yes':
      if (await call('DELETE', base)) remove(d.infohash);
      break;
    case 'remove': {
      const data = await askRemove(d);
      if (data && (await call('DELETE', `${base}?data=${data}`))) {
        remove(d.infohash);
        toast(data === 'delete' ? `${d.name}: removed, and its file deleted` : `${d.name}: removed from the list; the file stays shared`, 'ok');
      }
      break;
    }
    case 'cancel-no':
      actions.replaceChildren(...buttons(d));
      break;
  }
});

// ---- detail: piece map and peers ------------------------------------------------------------------

const polls = new Map(); // infohash -> interval id

function flip(tr) {
  if (tr.classList.contains('open')) close(tr);
  else open(tr);
}

function open(tr) {
  const d = tr._d;
  tr.classList.add('open');
  tr.querySelector('button.toggle').setAttribute('aria-expanded', 'true');
  const canvas = el('canvas', { class: 'piece-map', 'aria-label': 'piece map' });
  const body = el(
    'div',
    { class: 'detail-body' },
    el(
      'div',
      { class: 'detail-top' },
      el(
        'div',
        {},
        el('h3', {}, 'Pieces'),
        canvas,
        el('div', { class: 'piece-legend' }, el('span', { class: 'have' }, 'verified'), el('span', { class: 'miss' }, 'missing'), el('span', { class: 'count num pieces-count' }, '')),
      ),
      el('div', {}, el('h3', {}, 'Transfer'), el('dl', { class: 'kv facts' })),
    ),
    ...(d.multiFile ? [filesSection()] : []),
    el('div', {}, el('h3', {}, 'Peers'), el('div', { class: 'peer-table' }, el('div', { class: 'table-wrap' }, el('table', { class: 'data stack' }, el('thead', {}, el('tr', {}, ...peerHead())), el('tbody', { class: 'peer-rows' }, loadingRow()))))),
  );
  const detail = el('tr', { class: 'detail', data: { infohash: d.infohash } }, el('td', { colspan: '6' }, body));
  tr.after(detail);
  fillFacts(detail, d);
  const poll = async () => {
    if (detail._busy) return;
    detail._busy = true;
    try {
      const full = await api('GET', '/api/downloads/' + d.infohash);
      if (!detail.isConnected) return;
      detail._full = full;
      drawPieces(canvas, full.pieceMap, full.pieceCount);
      fillPeers(detail, full.peerList);
      if (full.multiFile) fillFiles(detail, full);
      const row = tbody.querySelector(sel(d.infohash));
      if (row) update(row, { ...tr._d, ...withoutDetail(full) });
    } catch (err) {
      if (detail.isConnected) $('.peer-rows', detail).replaceChildren(messageRow(err.message));
    } finally {
      detail._busy = false;
    }
  };
  void poll();
  polls.set(d.infohash, setInterval(poll, 1000));
}

function withoutDetail(full) {
  const { pieceMap, pieceCount, peerList, fileList, ...view } = full;
  return view;
}

// A checkbox of a folder's file: the files checked now are the ones to fetch.
tbody.addEventListener('change', async (e) => {
  const box = e.target instanceof Element ? e.target.closest('input.file-pick') : null;
  const detail = box && box.closest('tr.detail');
  if (!detail) return;
  const h = detail.dataset.infohash;
  const files = selectedIndices(detail);
  detail._picking = true;
  try {
    const full = await api('PATCH', '/api/downloads/' + h, { files });
    detail._full = full;
    fillFiles(detail, full, true);
    const row = tbody.querySelector(sel(h));
    if (row) update(row, { ...row._d, ...withoutDetail(full) });
  } catch (err) {
    toast(`${err.message}`);
    if (detail._full) fillFiles(detail, detail._full, true);
  } finally {
    detail._picking = false;
  }
});

function close(tr) {
  const h = tr.dataset.infohash;
  clearInterval(polls.get(h));
  polls.delete(h);
  tr.classList.remove('open');
  const t = tr.querySelector('button.toggle');
  if (t) t.setAttribute('aria-expanded', 'false');
  const next = tr.nextElementSibling;
  if (next && next.classList.contains('detail')) next.remove();
}

function fillFacts(detail, d) {
  // Up to four events a second: rebuild only when something shown changed.
  const key = [d.downloaded, d.uploaded, d.state, d.path, d.verified].join();
  if (detail._facts === key) return;
  detail._facts = key;
  const facts = $('.facts', detail);
  const kv = (k, ...v) => [el('dt', {}, k), el('dd', {}, ...v)];
  facts.replaceChildren(
    ...kv('Received', el('span', { class: 'num' }, size(d.downloaded))),
    ...kv('Sent', el('span', { class: 'num' }, size(d.uploaded))),
    ...kv('Started', timeAgo(d.startedAt)),
    ...kv(
      'Infohash',
      el(
        'span',
        { class: 'hash' },
        el('span', { class: 'mono', title: d.infohash }, short(d.infohash)),
        el('button', { class: 'btn ghost sm icon-only', type: 'button', data: { copy: d.infohash }, title: 'Copy infohash', 'aria-label': 'Copy infohash' }, icon('copy')),
      ),
    ),
    ...(d.path ? kv('Saved to', el('span', { class: 'mono' }, d.path)) : []),
    ...(d.multiFile
      ? []
      : kv(
          'Open',
          el('a', { href: d.contentUrl, target: '_blank', rel: 'noopener' }, d.state === 'done' ? 'in the browser' : 'now, while it downloads'),
          d.state === 'done' ? '' : el('div', { class: 'stream-note' }, 'Verified pieces are served at once; a video plays and seeks where its pieces are there.'),
        )),
  );
  const count = $('.pieces-count', detail);
  if (count) count.textContent = `${d.verified} of ${d.pieces} ${d.multiFile && d.selectedFiles < d.files ? 'wanted ' : ''}verified`;
}

const peerHead = () => [el('th', {}, 'Client'), el('th', {}, 'Address'), el('th', { class: 'hide-sm' }, 'Has'), el('th', { class: 'right' }, 'Received'), el('th', { class: 'right hide-xs' }, 'Sent'), el('th', { class: 'right' }, 'Rate')];
const loadingRow = () => el('tr', {}, el('td', { colspan: '6', class: 'muted' }, 'Loading…'));
const messageRow = (text) => el('tr', {}, el('td', { colspan: '6', class: 'muted' }, text));

function fillPeers(detail, list) {
  const rows = $('.peer-rows', detail);
  if (list.length === 0) return rows.replaceChildren(messageRow('No peer connected right now.'));
  rows.replaceChildren(
    ...list
      .slice()
      .sort((a, b) => b.downloaded - a.downloaded)
      .map((p) =>
        el(
          'tr',
          {},
          el('td', {}, el('div', { class: 'primary' }, p.client)),
          el('td', { class: 'mono nowrap' }, p.address, ' ', el('span', { class: 'muted small', title: p.outgoing ? 'we connected to it' : 'it connected to us' }, p.outgoing ? '→' : '←')),
          el('td', { class: 'hide-sm' }, el('div', { class: 'has' }, el('progress', { class: 'bar' + (p.has >= 1 ? ' done' : ''), max: '1', value: String(p.has) }), el('span', { class: 'num small' }, Math.floor(p.has * 100) + '%'))),
          el('td', { class: 'right num nowrap' }, size(p.downloaded)),
          el('td', { class: 'right num nowrap hide-xs' }, size(p.uploaded)),
          el('td', { class: 'right num nowrap' }, '↓ ' + rate(p.downloadRate), el('div', { class: 'muted small' }, '↑ ' + rate(p.uploadRate))),
        ),
      ),
  );
}

window.addEventListener('resize', () => {
  for (const detail of $$('tr.detail', tbody)) {
    if (detail._full) drawPieces($('canvas', detail), detail._full.pieceMap, detail._full.pieceCount);
  }
});

// Draw the rows from the same data the server used, so they carry their live parts; newest
// first, as new ones arrive on top.
tbody.replaceChildren(...[...downloads.values()].sort((x, y) => y.startedAt - x.startedAt).map((d) => row(d)));
refresh();
