// Live monitor: redraws the totals and the node table from socket.io `nodes` events
// ({now, nodes, totals}), and runs the search box through GET /api/search without leaving
// the page. Builds DOM nodes with textContent only: names come from remote nodes and are
// never HTML. Keep in step with views/monitor.ejs (and formatBytes with bootstrap/monitor.ts).
(function () {
  'use strict';
  var tbody = document.getElementById('nodes');
  var live = document.getElementById('live');
  var skew = 0; // server clock minus ours, so "ago" uses the server's time
  var names = {}; // node id → name, from the last payload, for the search hits

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  var UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  function formatBytes(n) {
    var v = n;
    var u = 0;
    while (v >= 1024 && u < UNITS.length - 1) { v /= 1024; u++; }
    return u === 0 ? n + ' B' : v.toFixed(v < 10 ? 2 : 1) + ' ' + UNITS[u];
  }

  function addr(host, port) {
    return (host.indexOf(':') >= 0 ? '[' + host + ']' : host) + ':' + port;
  }

  function ago(t) {
    var s = Math.max(0, Math.round((Date.now() + skew - t) / 1000));
    return s < 60 ? s + ' s ago' : s < 3600 ? Math.floor(s / 60) + ' min ago' : Math.floor(s / 3600) + ' h ago';
  }

  function row(n) {
    var tr = el('tr');
    var who = el('td');
    who.appendChild(el('div', 'name', n.name || '(unnamed)'));
    who.appendChild(el('div', 'id', n.id));
    tr.appendChild(who);
    tr.appendChild(el('td', 'mono', addr(n.host, n.port)));
    var role = el('td');
    role.appendChild(el('span', 'role ' + n.role.toLowerCase(), n.role));
    tr.appendChild(role);
    var shares = el('td');
    shares.appendChild(el('div', null, n.files + ' file' + (n.files === 1 ? '' : 's')));
    if (n.shares.length > 0) {
      var ul = el('ul', 'shares');
      n.shares.forEach(function (s) { ul.appendChild(el('li', null, s)); });
      if (n.files > n.shares.length) ul.appendChild(el('li', 'muted', 'and ' + (n.files - n.shares.length) + ' more'));
      shares.appendChild(ul);
    }
    tr.appendChild(shares);
    var dls = el('td');
    if (n.downloads.length === 0) dls.appendChild(el('span', 'muted', 'none'));
    n.downloads.forEach(function (d) {
      var line = el('div', 'dl');
      line.appendChild(el('span', 'dl-name', d.name));
      var bar = el('span', 'bar');
      var fill = el('span');
      fill.style.width = Math.max(0, Math.min(100, d.percent)) + '%';
      bar.appendChild(fill);
      line.appendChild(bar);
      line.appendChild(el('span', 'pct', d.percent.toFixed(1) + '%'));
      dls.appendChild(line);
    });
    if (n.downloadCount > n.downloads.length) dls.appendChild(el('div', 'muted', 'and ' + (n.downloadCount - n.downloads.length) + ' more'));
    tr.appendChild(dls);
    var seen = el('td', 'muted', ago(n.lastSeen));
    seen.setAttribute('data-seen', String(n.lastSeen));
    tr.appendChild(seen);
    return tr;
  }

  function render(payload) {
    skew = payload.now - Date.now();
    var nodes = payload.nodes;
    var rows = document.createDocumentFragment();
    if (nodes.length === 0) {
      var empty = el('tr', 'empty');
      var td = el('td', null, 'No node is registered yet.');
      td.colSpan = 6;
      empty.appendChild(td);
      rows.appendChild(empty);
    }
    names = {};
    nodes.forEach(function (n) { names[n.id] = n.name; rows.appendChild(row(n)); });
    tbody.replaceChildren(rows);
    var t = payload.totals;
    document.getElementById('stat-nodes').textContent = t.nodes;
    document.getElementById('stat-seeders').textContent = t.seeders;
    document.getElementById('stat-leechers').textContent = t.leechers;
    document.getElementById('stat-files').textContent = t.files;
    var bytes = document.getElementById('stat-bytes');
    bytes.textContent = formatBytes(t.bytes);
    bytes.setAttribute('data-bytes', String(t.bytes));
  }

  // ---- search --------------------------------------------------------------------------

  var form = document.getElementById('search');
  var input = document.getElementById('q');
  var status = document.getElementById('search-status');
  var hitsTable = document.getElementById('hits');
  var hitsBody = document.getElementById('hits-body');
  var asked = 0; // only the latest search may draw

  function showStatus(text, isError) {
    status.textContent = text;
    status.className = isError ? 'muted error' : 'muted';
  }

  function hitRow(h) {
    var tr = el('tr');
    tr.appendChild(el('td', 'name', h.name));
    var size = el('td', 'size', formatBytes(h.size));
    size.title = h.size + ' bytes';
    tr.appendChild(size);
    tr.appendChild(el('td', 'id', h.infohash));
    var holders = el('td');
    var ul = el('ul', 'holders');
    h.nodes.forEach(function (n) {
      var li = el('li', null, (names[n.id] || '(unnamed)') + ' ');
      li.appendChild(el('span', 'mono', addr(n.host, n.port)));
      ul.appendChild(li);
    });
    holders.appendChild(ul);
    tr.appendChild(holders);
    return tr;
  }

  function search(q) {
    var mine = ++asked;
    showStatus('Searching…', false);
    fetch('/api/search?q=' + encodeURIComponent(q), { headers: { accept: 'application/json' } })
      .then(function (res) {
        return res.json().then(function (body) { return { ok: res.ok, status: res.status, body: body }; }, function () {
          return { ok: false, status: res.status, body: { error: 'the server answered ' + res.status } };
        });
      })
      .then(function (r) {
        if (mine !== asked) return;
        if (!r.ok) {
          hitsTable.hidden = true;
          hitsBody.replaceChildren();
          showStatus(r.body && r.body.error ? r.body.error : 'search failed (' + r.status + ')', true);
          return;
        }
        var files = r.body.files;
        var rows = document.createDocumentFragment();
        files.forEach(function (h) { rows.appendChild(hitRow(h)); });
        hitsBody.replaceChildren(rows);
        hitsTable.hidden = files.length === 0;
        showStatus(files.length + (files.length === 1 ? ' file matches' : ' files match') + ' “' + q + '”', false);
        if (window.history && history.replaceState) history.replaceState(null, '', '/?q=' + encodeURIComponent(q));
      }, function () {
        if (mine === asked) showStatus('the server cannot be reached', true);
      });
  }

  form.addEventListener('submit', function (e) {
    e.preventDefault();
    if (input.value === '') return;
    search(input.value);
  });

  // ---- live ------------------------------------------------------------------------------

  var now = Number(document.body.getAttribute('data-now'));
  if (now > 0) skew = now - Date.now();
  setInterval(function () {
    tbody.querySelectorAll('[data-seen]').forEach(function (td) { td.textContent = ago(Number(td.getAttribute('data-seen'))); });
  }, 1000);

  if (typeof io !== 'function') return; // socket.io client missing: the server-rendered page stays
  var socket = io();
  socket.on('connect', function () { live.textContent = 'live'; live.className = 'live on'; });
  socket.on('disconnect', function () { live.textContent = 'offline'; live.className = 'live off'; });
  socket.on('connect_error', function (err) { live.textContent = 'offline'; live.className = 'live off'; live.title = err && err.message ? err.message : 'live updates unavailable'; });
  socket.on('nodes', render);
})();
