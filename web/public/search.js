// Search: the form asks /api/search without a reload (and keeps ?q= in the address bar);
// Download starts a transfer (POST /api/downloads) and then shows its progress in place,
// from the `download` events, with a link to Transfers.
import { $, el, icon, api, on, initial, toast, size, short, plural, badge, progressLine, setProgress } from './app.js';

const form = $('#search-form');
const input = $('#q');
const meta = $('#search-meta');
const card = $('#results-card');
const tbody = $('#results');
const started = new Map(); // infohash -> the action cell showing its progress
const latest = new Map(); // infohash -> the last `download` event, in case it beats the POST's answer

function action(r) {
  const box = el('div', { class: 'result-action' });
  if (r.local) box.append(badge('green', 'shared here'));
  else if (r.downloading) box.append(el('a', { class: 'btn sm', href: '/transfers' }, 'Downloading →'));
  else box.append(el('button', { class: 'btn primary sm', type: 'button', data: { download: r.infohash } }, icon('download'), 'Download'));
  return box;
}

function row(r) {
  return el(
    'tr',
    { data: { infohash: r.infohash } },
    el('td', { class: 'name-cell' }, el('div', { class: 'primary' }, r.name)),
    el('td', { class: 'right num nowrap' }, size(r.size)),
    el('td', {}, el('div', { class: 'badges' }, badge('blue', plural(r.sources, 'node')), r.via.map((v) => badge('via-' + v, v === 'peers' ? 'peers' : 'bootstrap index')))),
    el('td', { class: 'hide-sm mono muted', title: r.infohash }, short(r.infohash)),
    el('td', { class: 'actions' }, action(r)),
  );
}

function show(query, results, ms) {
  card.hidden = false;
  started.clear();
  if (results.length === 0) {
    tbody.replaceChildren(
      el('tr', { class: 'empty-row' }, el('td', { colspan: '5' }, el('strong', {}, 'Nothing found.'), el('br'), `No known peer shares a file matching “${query}”.`)),
    );
  } else tbody.replaceChildren(...results.map(row));
  meta.replaceChildren(el('span', {}, `${plural(results.length, 'result')} for “${query}”` + (ms === undefined ? '' : ` · ${ms} ms`)));
}

let seq = 0;
async function search(query, push) {
  const mine = ++seq;
  meta.replaceChildren(el('span', { class: 'spinner' }), el('span', {}, `Asking the network for “${query}”…`));
  const t0 = performance.now();
  try {
    const res = await api('GET', '/api/search?q=' + encodeURIComponent(query));
    if (mine !== seq) return;
    show(res.query ?? query, res.results, Math.round(performance.now() - t0));
    const url = '/search?q=' + encodeURIComponent(query);
    if (push) history.pushState({ q: query }, '', url);
  } catch (err) {
    if (mine !== seq) return;
    meta.replaceChildren(el('span', {}, ''));
    toast(err.message);
  }
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  const q = input.value.trim();
  if (!q) {
    input.focus();
    return toast('Type part of a file name first.', 'info', 2500);
  }
  void search(q, true);
});

window.addEventListener('popstate', () => {
  const q = new URLSearchParams(location.search).get('q') || '';
  input.value = q;
  if (q) void search(q, false);
  else {
    card.hidden = true;
    meta.replaceChildren();
  }
});

// ---- download --------------------------------------------------------------------------------

tbody.addEventListener('click', async (e) => {
  const btn = e.target instanceof Element ? e.target.closest('button[data-download]') : null;
  if (!btn) return;
  const infohash = btn.dataset.download;
  btn.disabled = true;
  btn.replaceChildren(el('span', { class: 'spinner' }), 'Starting…');
  try {
    const d = await api('POST', '/api/downloads', { target: infohash });
    const box = btn.closest('.result-action');
    const view = latest.get(infohash) ?? (d && typeof d.progress === 'number' ? d : { infohash, state: 'downloading', progress: 0 });
    box.replaceChildren(progressLine(view), el('a', { class: 'btn sm', href: '/transfers' }, 'Transfers →'));
    started.set(infohash, box);
    if (view.state === 'done') done(box);
  } catch (err) {
    btn.disabled = false;
    btn.replaceChildren(icon('download'), 'Download');
    toast(err.message);
  }
});

function done(box) {
  const tr = box.closest('tr');
  box.replaceChildren(badge('green', 'downloaded'), el('a', { class: 'btn sm', href: '/transfers' }, 'Transfers →'));
  if (tr) tr.classList.add('flash');
}

on('download', (d) => {
  latest.set(d.infohash, d);
  const box = started.get(d.infohash);
  if (!box) return;
  setProgress(box, d);
  if (d.state === 'done') {
    started.delete(d.infohash);
    done(box);
  }
});

on('status', (s) => {
  const n = $('#search-peers');
  if (n) n.textContent = plural(s.totals.peers, 'peer');
});

// The server rendered the results (a GET form): the buttons work now that we are here.
for (const b of tbody.querySelectorAll('button[data-download]')) b.disabled = false;
const data = initial();
if (data && data.query && !data.results) void search(data.query, false);
if (!input.value) input.focus();
