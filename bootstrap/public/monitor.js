// Live monitor: redraws the node table from socket.io `nodes` events ({now, nodes}).
// Builds DOM nodes with textContent only: names come from remote nodes and are never HTML.
(function () {
  'use strict';
  var tbody = document.getElementById('nodes');
  var live = document.getElementById('live');
  var skew = 0; // server clock minus ours, so "ago" uses the server's time

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
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
    tr.appendChild(el('td', 'mono', (n.host.indexOf(':') >= 0 ? '[' + n.host + ']' : n.host) + ':' + n.port));
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
    nodes.forEach(function (n) { rows.appendChild(row(n)); });
    tbody.replaceChildren(rows);
    var seeders = nodes.filter(function (n) { return n.role === 'SEEDER'; }).length;
    document.getElementById('stat-nodes').textContent = nodes.length;
    document.getElementById('stat-seeders').textContent = seeders;
    document.getElementById('stat-leechers').textContent = nodes.length - seeders;
    document.getElementById('stat-files').textContent = nodes.reduce(function (s, n) { return s + n.files; }, 0);
  }

  if (typeof window.SHOAL_NOW === 'number') skew = window.SHOAL_NOW - Date.now();
  setInterval(function () {
    tbody.querySelectorAll('[data-seen]').forEach(function (td) { td.textContent = ago(Number(td.getAttribute('data-seen'))); });
  }, 1000);

  if (typeof io !== 'function') return; // socket.io client missing: the server-rendered table stays
  var socket = io();
  socket.on('connect', function () { live.textContent = 'live'; live.className = 'live on'; });
  socket.on('disconnect', function () { live.textContent = 'offline'; live.className = 'live off'; });
  socket.on('nodes', render);
})();
