// Seeding: what this node uploads, redrawn from GET /api/seeding every POLL_MS while the page
// is connected (the figures move every second; no event says when).
import { $, el, api, on, reloadOnConnect, initial, size, rate, plural } from './app.js';

const POLL_MS = 1500;
const tbody = $('#seeding');
let connected = false;
let busy = false;

const ratio = (r) => r.toFixed(2);

function peerItem(p) {
  return el(
    'li',
    { title: (p.unchoked ? 'we send to it' : 'waiting for an upload slot') + (p.outgoing ? '; we connected to it' : '; it connected to us') },
    el('span', { class: 'mono' }, p.address),
    ' ',
    el('span', { class: 'client' }, p.client),
    ' ',
    el('span', { class: 'muted num' }, '↑ ' + rate(p.uploadRate) + ' · ' + size(p.uploaded)),
  );
}

function row(s) {
  return el(
    'tr',
    { class: 'seed', data: { infohash: s.infohash } },
    el(
      'td',
      { class: 'name-cell' },
      el('div', { class: 'primary' }, s.name),
      el('div', { class: 'secondary status-line' }, el('span', { class: 'badge dot ' + (s.complete ? 'done' : 'downloading') }, s.complete ? 'seeding' : 'downloading'), el('span', {}, size(s.size))),
    ),
    el('td', { class: 'right num nowrap sent' }, size(s.uploaded)),
    el('td', { class: 'right num nowrap ratio' }, ratio(s.ratio)),
    el('td', { class: 'right num nowrap rate' }, '↑ ' + rate(s.uploadRate)),
    el('td', { class: 'peers-cell' }, s.peers.length === 0 ? el('span', { class: 'muted' }, 'no peer connected now') : null, el('ul', { class: 'seed-peers' }, s.peers.map(peerItem))),
  );
}

function draw(data) {
  $('#seeding-summary').textContent = `${plural(data.seeding.length, 'file')} sent or asked for · ↑ ${rate(data.uploadRate)} · ${size(data.uploaded)} sent since the node started`;
  if (data.seeding.length === 0) {
    tbody.replaceChildren(
      el('tr', { class: 'empty-row' }, el('td', { colspan: '5' }, el('strong', {}, 'Nothing sent yet.'), el('br'), 'Files you share are offered to the network; when a peer downloads one, it shows here.')),
    );
    return;
  }
  tbody.replaceChildren(...data.seeding.map(row));
}

async function poll() {
  if (!connected || busy) return;
  busy = true;
  try {
    draw(await api('GET', '/api/seeding'));
  } catch {
    /* keep what is shown: the connection state says why */
  } finally {
    busy = false;
  }
}

reloadOnConnect('/api/seeding', (data) => {
  connected = true;
  draw(data);
});
on('disconnect', () => (connected = false));
setInterval(poll, POLL_MS);

const start = (initial() || {}).seeding;
if (start) draw(start);
