// Peers: the table follows `peer-up` / `peer-down` / `peer-changed`; the chips filter it by
// source; the form adds a peer by hand (POST /api/peers).
import { $, $$, el, api, on, reloadOnConnect, initial, toast, plural, hostPort, timeAgo, badge, upsertRow, removeRow, SOURCE } from './app.js';

const peers = new Map();
for (const p of (initial() || {}).peers || []) peers.set(p.key, p);

const tbody = $('#peers');
let filter = 'all';

function row(p) {
  return el(
    'tr',
    { data: { key: p.key }, hidden: !visible(p) },
    el(
      'td',
      { class: 'name-cell' },
      el('div', { class: 'primary' }, p.name || 'unnamed node'),
      el('div', { class: 'secondary mono hide-xs' }, p.id || 'id not known yet'),
      el('div', { class: 'secondary mono xs-only' }, hostPort(p.host, p.port)),
    ),
    el('td', { class: 'mono nowrap hide-xs' }, hostPort(p.host, p.port)),
    el('td', {}, el('div', { class: 'badges' }, p.sources.map((s) => badge('src-' + s, SOURCE[s] || s)))),
    el('td', { class: 'hide-xs nowrap num' }, timeAgo(p.lastSeen)),
    el('td', { class: 'hide-sm nowrap num muted' }, timeAgo(p.firstSeen)),
    el('td', {}, badge(p.reachable, p.reachable, true)),
  );
}

const visible = (p) => filter === 'all' || p.sources.includes(filter);
const sel = (key) => `tr[data-key="${CSS.escape(key)}"]`;

function emptyRow() {
  const none = peers.size === 0;
  const text = none ? 'No peer known yet.' : `No peer from ${SOURCE[filter] === 'by hand' ? 'a manual entry' : SOURCE[filter]}.`;
  return el(
    'tr',
    { class: 'empty-row' },
    el('td', { colspan: '6' }, el('strong', {}, text), el('br'), none ? 'Peers appear here as discovery finds them; add one by hand above.' : 'Choose “All” to see every peer.'),
  );
}

function refresh() {
  // counts on the filter chips, the summary line, and the empty row
  const counts = { all: peers.size };
  for (const p of peers.values()) for (const s of p.sources) counts[s] = (counts[s] || 0) + 1;
  for (const b of $$('#filters button')) {
    const f = b.dataset.filter;
    b.querySelector('.n').textContent = String(counts[f] || 0);
    if (f === 'tracker' || f === 'magnet') b.hidden = !counts[f] && filter !== f;
  }
  // The same count as the sidebar's: peers that answer or were not tried yet; the silent ones apart.
  const silent = [...peers.values()].filter((p) => p.reachable === 'no').length;
  $('#peers-summary').textContent = plural(peers.size - silent, 'known peer') + (silent > 0 ? `, ${silent} not answering` : '');
  const shown = [...peers.values()].filter(visible).length;
  const empty = tbody.querySelector('.empty-row');
  if (shown === 0 && !empty) tbody.append(emptyRow());
  else if (shown === 0 && empty) empty.replaceWith(emptyRow());
  else if (shown > 0 && empty) empty.remove();
}

function drawAll() {
  tbody.replaceChildren(...[...peers.values()].map(row));
  refresh();
}

on('peer-up', (p) => {
  peers.set(p.key, p);
  upsertRow(tbody, sel(p.key), row(p));
  refresh();
});
on('peer-changed', (p) => {
  peers.set(p.key, p);
  upsertRow(tbody, sel(p.key), row(p), false);
  refresh();
});
on('peer-down', (p) => {
  peers.delete(p.key);
  removeRow(tbody.querySelector(sel(p.key)), refresh);
});

reloadOnConnect('/api/peers', (res) => {
  const fresh = new Map(res.peers.map((p) => [p.key, p]));
  const added = [...fresh.keys()].filter((k) => !peers.has(k));
  peers.clear();
  for (const [k, p] of fresh) peers.set(k, p);
  drawAll();
  for (const k of added) tbody.querySelector(sel(k))?.classList.add('flash');
});

// ---- filter ---------------------------------------------------------------------------------

$('#filters').addEventListener('click', (e) => {
  const b = e.target instanceof Element ? e.target.closest('button[data-filter]') : null;
  if (!b) return;
  filter = b.dataset.filter;
  for (const x of $$('#filters button')) x.setAttribute('aria-pressed', String(x === b));
  for (const tr of $$('tr[data-key]', tbody)) tr.hidden = !visible(peers.get(tr.dataset.key));
  refresh();
});

// ---- add by hand ------------------------------------------------------------------------------

const form = $('#add-peer');
const error = $('#add-peer-error');
form.addEventListener('submit', async (e) => {
  e.preventDefault();
  error.hidden = true;
  let host = $('#peer-host').value.trim();
  let portText = $('#peer-port').value.trim();
  // "host:port" pasted into the host box
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(host);
  if (m && !portText) [, host, portText] = m;
  const port = Number(portText);
  if (!host || !Number.isInteger(port) || port < 1 || port > 65535) {
    error.textContent = 'Give a host and a port between 1 and 65535.';
    error.hidden = false;
    return;
  }
  const button = form.querySelector('button[type="submit"]');
  button.disabled = true;
  try {
    await api('POST', '/api/peers', { host, port });
    toast(`Added ${hostPort(host, port)}`, 'ok');
    form.reset();
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
});

drawAll();
