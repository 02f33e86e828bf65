// Overview: the totals, this node's facts and the discovery sources follow `status` (every
// second); a chart of the last two minutes of throughput; a short list of transfers.
import { $, el, icon, on, reloadOnConnect, initial, size, rate, pct, duration, timeAgo, badge, setProgress, hostPort } from './app.js';

const data = initial() || {};
const text = (id, value) => {
  const e = document.getElementById(id);
  if (e && e.textContent !== value) e.textContent = value;
};

// ---- status ------------------------------------------------------------------------------

let startedAt = data.status ? data.status.startedAt : Date.now();

function discoveryItem(d) {
  return el(
    'li',
    { data: { source: d.source } },
    el('span', { class: 'source-icon ' + d.source }, icon(d.source)),
    el(
      'div',
      { class: 'what' },
      el('div', { class: 'title' }, d.source === 'multicast' ? 'LAN multicast' : 'Bootstrap server'),
      el('div', { class: 'detail' }, d.detail || (d.source === 'multicast' ? 'beacons on the local network' : 'registry and search index')),
    ),
    el('div', { class: 'right' }, badge(d.state, d.state, true), el('span', { class: 'small muted' }, 'since ', timeAgo(d.since))),
  );
}

const sources = new Map();
function drawDiscovery() {
  const ul = $('#discovery');
  if (!ul) return;
  if (sources.size === 0) return; // keep the server's "no automatic discovery" text
  ul.replaceChildren(...[...sources.values()].map(discoveryItem));
}

function applyStatus(s) {
  const t = s.totals;
  startedAt = s.startedAt;
  text('t-peers', String(t.peers));
  text('t-files', String(t.files));
  text('t-active', String(t.activeDownloads));
  text('t-down-rate', rate(t.downloadRate));
  text('t-up-rate', rate(t.uploadRate));
  text('t-downloaded', size(t.downloaded));
  text('t-uploaded', size(t.uploaded));
  text('ov-name', s.name);
  text('kv-name', s.name);
  text('kv-id', s.id);
  text('kv-port', String(s.peerPort));
  text('kv-announce', hostPort(s.announceHost, s.peerPort));
  text('kv-shared', s.sharedDir);
  text('kv-downloads', s.downloadDir);
  const addrs = $('#kv-addresses');
  if (addrs && addrs.dataset.v !== s.addresses.join()) {
    addrs.dataset.v = s.addresses.join();
    addrs.replaceChildren(...(s.addresses.length ? s.addresses.map((a) => el('span', { class: 'chip' }, a)) : [el('span', { class: 'muted' }, 'loopback only')]));
  }
  const changed = s.discovery.some((d) => JSON.stringify(sources.get(d.source)) !== JSON.stringify(d)) || s.discovery.length !== sources.size;
  if (changed) {
    sources.clear();
    for (const d of s.discovery) sources.set(d.source, d);
    drawDiscovery();
  }
  samples.push({ t: Date.now(), down: t.downloadRate, up: t.uploadRate });
  while (samples.length > 121) samples.shift();
  drawChart();
}

on('status', applyStatus);
on('discovery', (d) => {
  sources.set(d.source, d);
  drawDiscovery();
});
setInterval(() => text('ov-uptime', duration((Date.now() - startedAt) / 1000)), 1000);

// ---- throughput chart ---------------------------------------------------------------------

const samples = [];
const chart = $('#chart');

function drawChart() {
  if (!chart) return;
  const dpr = window.devicePixelRatio || 1;
  const w = chart.clientWidth;
  const hgt = chart.clientHeight;
  if (w === 0) return;
  if (chart.width !== Math.round(w * dpr) || chart.height !== Math.round(hgt * dpr)) {
    chart.width = Math.round(w * dpr);
    chart.height = Math.round(hgt * dpr);
  }
  const ctx = chart.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, hgt);
  const css = getComputedStyle(document.documentElement);
  const line = css.getPropertyValue('--line').trim();
  const muted = css.getPropertyValue('--muted').trim();
  const top = 16;
  const bottom = hgt - 4;
  const max = Math.max(64 * 1024, ...samples.map((p) => Math.max(p.down, p.up))) * 1.15;
  // grid: three lines with their rates
  ctx.font = '11px ' + getComputedStyle(document.body).fontFamily;
  ctx.fillStyle = muted;
  ctx.strokeStyle = line;
  ctx.lineWidth = 1;
  for (let i = 0; i <= 2; i++) {
    const y = Math.round(top + ((bottom - top) * i) / 2) + 0.5;
    ctx.beginPath();
    ctx.moveTo(0, y);
    ctx.lineTo(w, y);
    ctx.stroke();
    if (i < 2) ctx.fillText(rate((max * (2 - i)) / 2), 4, y - 4);
  }
  // The last two minutes; until there are two, the first samples spread over at least 30 s.
  const now = Date.now();
  const span = samples.length ? Math.min(120_000, Math.max(30_000, now - samples[0].t)) : 120_000;
  const x = (t) => w - ((now - t) / span) * w;
  const y = (v) => bottom - (v / max) * (bottom - top);
  for (const [key, colorVar] of [
    ['up', '--bar-done'],
    ['down', '--bar-fill'],
  ]) {
    if (samples.length < 2) break;
    const color = css.getPropertyValue(colorVar).trim();
    ctx.beginPath();
    samples.forEach((p, i) => (i === 0 ? ctx.moveTo(x(p.t), y(p[key])) : ctx.lineTo(x(p.t), y(p[key]))));
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.lineJoin = 'round';
    ctx.stroke();
    ctx.lineTo(x(samples[samples.length - 1].t), bottom);
    ctx.lineTo(x(samples[0].t), bottom);
    ctx.closePath();
    ctx.globalAlpha = 0.12;
    ctx.fillStyle = color;
    ctx.fill();
    ctx.globalAlpha = 1;
  }
  if (samples.length < 2) {
    ctx.fillStyle = muted;
    ctx.textAlign = 'center';
    ctx.fillText('collecting…', w / 2, (top + bottom) / 2);
    ctx.textAlign = 'start';
  }
}
window.addEventListener('resize', drawChart);
if (data.status) applyStatus(data.status);
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', drawChart);

// ---- transfers ----------------------------------------------------------------------------

const downloads = new Map();
const list = $('#mini-transfers');

function miniItem(d) {
  return el(
    'li',
    { data: { infohash: d.infohash } },
    el('span', { class: 'name', title: d.name }, d.name),
    el('progress', { class: 'bar ' + d.state, max: '1', value: String(d.progress) }),
    el('span', { class: 'pct num small right' }, pct(d.progress)),
    el('span', { class: 'rate num small muted right' }, d.state === 'downloading' ? rate(d.downloadRate) : d.state),
  );
}

function drawTransfers() {
  if (!list) return;
  const order = [...downloads.values()].sort((a, b) => rank(a) - rank(b) || b.startedAt - a.startedAt).slice(0, 6);
  const have = [...list.children].map((li) => li.dataset.infohash).join();
  if (have === order.map((d) => d.infohash).join()) {
    for (const d of order) {
      const li = list.querySelector(`[data-infohash="${d.infohash}"]`);
      setProgress(li, d);
      li.querySelector('.rate').textContent = d.state === 'downloading' ? rate(d.downloadRate) : d.state;
    }
  } else list.replaceChildren(...order.map(miniItem));
  $('#mini-empty').hidden = downloads.size > 0;
}
const rank = (d) => ({ downloading: 0, paused: 1, failed: 2, done: 3 })[d.state] ?? 4;

for (const d of data.downloads || []) downloads.set(d.infohash, d);
on('download', (d) => {
  downloads.set(d.infohash, d);
  drawTransfers();
});
on('download-removed', ({ infohash }) => {
  downloads.delete(infohash);
  drawTransfers();
});
reloadOnConnect('/api/downloads', (res) => {
  downloads.clear();
  for (const d of res.downloads) downloads.set(d.infohash, d);
  drawTransfers();
});
