// Shared by every page: formatting (the same as views/partials/helpers.ejs), DOM building,
// the socket.io connection, REST calls, toasts, copy buttons and ticking relative times.
// Text from the network (names, ids, addresses) only ever goes in through textContent.

// ---- formatting: keep in step with views/partials/helpers.ejs ----------------------------

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function size(n) {
  if (!(n > 0)) return '0 B';
  let i = 0;
  while (n >= 1024 && i < UNITS.length - 1) {
    n /= 1024;
    i++;
  }
  return (i === 0 ? String(Math.round(n)) : n >= 100 ? n.toFixed(0) : n.toFixed(1)) + ' ' + UNITS[i];
}

export const rate = (n) => size(n) + '/s';

export function ago(t) {
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  if (s < 86400) return Math.floor(s / 3600) + ' h ago';
  return Math.floor(s / 86400) + ' d ago';
}

export function duration(sec) {
  sec = Math.max(0, Math.round(sec));
  if (sec < 60) return sec + ' s';
  if (sec < 3600) return Math.floor(sec / 60) + ' min ' + (sec % 60) + ' s';
  if (sec < 86400) return Math.floor(sec / 3600) + ' h ' + Math.floor((sec % 3600) / 60) + ' min';
  return Math.floor(sec / 86400) + ' d ' + Math.floor((sec % 86400) / 3600) + ' h';
}

export function progressSub(d) {
  if (d.state === 'done') return plural(d.pieces, 'piece') + ' · complete';
  const base = d.verified + ' of ' + d.pieces + ' pieces';
  if (d.state === 'paused') return base + ' · paused';
  if (d.state === 'failed') return base;
  return base + (d.eta === null || d.eta === undefined ? ' · stalled' : ' · ' + duration(d.eta) + ' left');
}
export const pct = (p) => (p >= 1 ? '100%' : (Math.floor(Math.max(0, p) * 1000) / 10).toFixed(1) + '%');
export const short = (hash) => hash.slice(0, 8) + '…' + hash.slice(-4);
export const hostPort = (host, port) => (host.includes(':') ? '[' + host + ']' : host) + ':' + port;
export const plural = (n, one, many) => n + ' ' + (n === 1 ? one : many || one + 's');
export const holders = (n) => (n === 0 ? 'only here' : 'also on ' + n + ' node' + (n === 1 ? '' : 's'));
export const SOURCE = { multicast: 'multicast', bootstrap: 'bootstrap', manual: 'by hand', peer: 'learnt', tracker: 'tracker', magnet: 'magnet' };

// ---- DOM ---------------------------------------------------------------------------------

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

/**
 * el('td', { class: 'x', text: 'y', title: 'z', data: { key: 'k' } }, child, 'text', ...)
 * Strings among the children become text nodes; null and false are skipped.
 */
export function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'data') for (const [dk, dv] of Object.entries(v)) e.dataset[dk] = dv;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return e;
}

/** A copy of an icon from the page's <template id="icons">. */
export function icon(name) {
  const t = document.getElementById('icons');
  const svg = t && t.content.querySelector(`[data-icon="${name}"] svg`);
  return svg ? svg.cloneNode(true) : document.createTextNode('');
}

/** A timestamp shown as "3 s ago" and kept ticking. */
export function timeAgo(t, cls) {
  return el('span', { class: cls, data: { time: String(t) }, title: new Date(t).toLocaleString() }, ago(t));
}

export const badge = (cls, text, dot = false) => el('span', { class: 'badge ' + (dot ? 'dot ' : '') + cls }, text);

/** A <progress> bar coloured by state, with its percent text. */
export function progressLine(d) {
  return el('div', { class: 'progress-line' }, el('progress', { class: 'bar ' + d.state, max: '1', value: String(d.progress) }), el('span', { class: 'pct' }, pct(d.progress)));
}

export function setProgress(root, d) {
  const bar = $('progress', root);
  if (bar) {
    bar.value = d.progress;
    bar.className = 'bar ' + d.state;
  }
  const p = $('.pct', root);
  if (p) p.textContent = pct(d.progress);
}

/** Replace a row in place, or append it; a new row flashes once. */
export function upsertRow(tbody, selector, row, flash = true) {
  const old = tbody.querySelector(selector);
  if (old) old.replaceWith(row);
  else {
    tbody.append(row);
    if (flash) row.classList.add('flash');
  }
  return row;
}

/** Fade a row out, then remove it. */
export function removeRow(row, then) {
  if (!row) return;
  row.classList.add('leaving');
  setTimeout(() => {
    row.remove();
    if (then) then();
  }, 450);
}

/** The data the server rendered the page with (<script type="application/json" id="initial">). */
export function initial() {
  const node = document.getElementById('initial');
  try {
    return node ? JSON.parse(node.textContent || 'null') : null;
  } catch {
    return null;
  }
}

// ---- toasts ------------------------------------------------------------------------------

export function toast(message, kind = 'error', ms = kind === 'error' ? 7000 : 3500) {
  const box = document.getElementById('toasts');
  if (!box) return;
  const close = el('button', { type: 'button', 'aria-label': 'Dismiss', text: '×' });
  const t = el('div', { class: 'toast ' + kind, role: kind === 'error' ? 'alert' : 'status' }, el('div', { class: 'msg' }, message), close);
  const dismiss = () => {
    t.classList.add('leaving');
    setTimeout(() => t.remove(), 300);
  };
  close.addEventListener('click', dismiss);
  box.append(t);
  while (box.children.length > 4) box.firstElementChild.remove();
  setTimeout(dismiss, ms);
}

// ---- REST --------------------------------------------------------------------------------

/** fetch + JSON; throws an Error carrying the API's `{ error }` message on a 4xx/5xx. */
export async function api(method, url, body) {
  const init = { method, headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch {
    throw new Error('The node does not answer. Is it still running?');
  }
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  if (!res.ok) throw new Error((json && json.error) || `${res.status} ${res.statusText}`.trim());
  return json;
}

// ---- copy --------------------------------------------------------------------------------

async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard API outside a secure context (the dashboard over http on a LAN address).
    const ta = el('textarea', { class: 'sr-only', readonly: true });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    const ok = document.execCommand('copy');
    ta.remove();
    return ok;
  }
}

document.addEventListener('click', async (e) => {
  const btn = e.target instanceof Element ? e.target.closest('[data-copy]') : null;
  if (!btn) return;
  const ok = await copy(btn.getAttribute('data-copy') || '');
  if (!ok) return toast('Could not copy to the clipboard');
  btn.classList.add('copied');
  const title = btn.getAttribute('title');
  btn.setAttribute('title', 'Copied');
  setTimeout(() => {
    btn.classList.remove('copied');
    if (title) btn.setAttribute('title', title);
  }, 1400);
});

// ---- live connection ---------------------------------------------------------------------

const live = document.getElementById('live');
function setLive(state, text) {
  if (!live) return;
  live.className = 'live ' + state;
  live.textContent = text;
  live.hidden = false;
}

/** The socket.io connection (same origin; the auth cookie rides along), or null without one. */
const socket = typeof window.io === 'function' ? window.io() : null;

const connectHooks = [];
/** Run `fn` on every connect and reconnect: refetch what events may have been missed. */
function onConnect(fn) {
  connectHooks.push(fn);
  if (socket && socket.connected) fn();
}

/**
 * When the node stops (the connection drops and does not come back) or stops answering (no
 * `status` for STALE_MS while connected: a hung or overloaded process), the page says so
 * plainly and greys out what it shows, which is from then; it recovers by itself.
 */
const OFFLINE_AFTER_MS = 1500;
const STALE_MS = 8000;
let lastStatus = Date.now();
let offlineTimer = null;

function goOffline(kind) {
  clearTimeout(offlineTimer);
  offlineTimer = null;
  if (document.body.classList.contains('node-offline') && document.body.dataset.offline === kind) return;
  document.body.classList.add('node-offline');
  document.body.dataset.offline = kind;
  const page = document.querySelector('.page');
  if (page) page.inert = true;
  let banner = document.getElementById('offline');
  if (!banner) {
    banner = el('div', { class: 'offline-banner', id: 'offline', role: 'alert' });
    document.getElementById('main')?.prepend(banner);
  }
  const since = new Date().toLocaleTimeString();
  banner.replaceChildren(
    el('strong', { class: 'offline-title' }, kind === 'stuck' ? 'The node is not answering' : 'The node is not running'),
    el(
      'span',
      { class: 'offline-text' },
      kind === 'stuck'
        ? `It has sent nothing since ${since}: it may be stuck or its machine overloaded. `
        : `${location.host} stopped answering at ${since}: Shoal is not running there any more, or cannot be reached. `,
      'What the page shows is from then. It comes back by itself when the node is running again.',
    ),
  );
  setLive('', kind === 'stuck' ? 'not answering' : 'node not running');
  for (const id of ['rate-down', 'rate-up']) {
    const e = document.getElementById(id);
    if (e) e.textContent = '—';
  }
  if (!document.title.startsWith('(offline) ')) document.title = '(offline) ' + document.title;
}

function goOnline() {
  clearTimeout(offlineTimer);
  offlineTimer = null;
  lastStatus = Date.now();
  if (!document.body.classList.contains('node-offline')) return;
  document.body.classList.remove('node-offline');
  delete document.body.dataset.offline;
  const page = document.querySelector('.page');
  if (page) page.inert = false;
  document.getElementById('offline')?.remove();
  document.title = document.title.replace(/^\(offline\) /, '');
}

/** Gone for good unless it comes back within OFFLINE_AFTER_MS (a blip is not worth a banner). */
function soonOffline() {
  offlineTimer ??= setTimeout(() => goOffline('stopped'), OFFLINE_AFTER_MS);
}

if (socket) {
  if (!socket.connected) setLive('wait', 'connecting…');
  socket.on('connect', () => {
    goOnline();
    setLive('on', 'live');
    for (const fn of connectHooks) fn();
  });
  socket.on('disconnect', () => {
    setLive('wait', 'reconnecting…');
    soonOffline();
  });
  socket.on('connect_error', (err) => {
    const auth = err && /auth|token|401|403/i.test(err.message);
    setLive('', auth ? 'not signed in' : 'offline');
    if (!auth) soonOffline();
  });
  socket.on('status', () => {
    lastStatus = Date.now();
    if (document.body.dataset.offline === 'stuck') goOnline();
    if (socket.connected) setLive('on', 'live');
  });
  setInterval(() => {
    if (socket.connected && Date.now() - lastStatus > STALE_MS) goOffline('stuck');
  }, 1000);
} else {
  setLive('', 'no live updates');
}

/**
 * On every connect and reconnect, reload a list from the API (`GET url`) and hand it to
 * `apply`: events missed while disconnected are not replayed. On failure what is shown stays;
 * the next connect tries again.
 */
export function reloadOnConnect(url, apply) {
  onConnect(async () => {
    try {
      apply(await api('GET', url));
    } catch {
      /* keep what is shown */
    }
  });
}

/** After a token rotation: the live connection presents the new token when it connects again. */
export function signIn(token) {
  if (socket) socket.auth = { token };
}

/** Subscribe to a LiveEvents event (no-op without a socket). */
export function on(event, fn) {
  if (socket) socket.on(event, fn);
}

// ---- things every page shows: sidebar rates and counts ------------------------------------

function setCount(id, n, hot) {
  const c = document.getElementById(id);
  if (!c) return;
  c.hidden = false;
  c.textContent = String(n);
  if (hot) c.classList.toggle('hot', n > 0);
}

on('status', (s) => {
  const t = s.totals;
  const down = document.getElementById('rate-down');
  const up = document.getElementById('rate-up');
  if (down) down.textContent = rate(t.downloadRate);
  if (up) up.textContent = rate(t.uploadRate);
  const name = document.getElementById('node-name');
  if (name) name.textContent = s.name;
  setCount('nav-peers', t.peers);
  setCount('nav-files', t.files);
  setCount('nav-transfers', t.activeDownloads, true);
  setCount('nav-seeding', t.seeding);
});

// Relative times tick once a second.
setInterval(() => {
  for (const e of document.querySelectorAll('[data-time]')) {
    const text = ago(Number(e.getAttribute('data-time')));
    if (e.textContent !== text) e.textContent = text;
  }
}, 1000);

const back = document.getElementById('go-back');
if (back && history.length > 1) {
  back.hidden = false;
  back.addEventListener('click', () => history.back());
}
