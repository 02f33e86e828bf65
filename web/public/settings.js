// Settings: each control sends its change at once (PATCH /api/settings) and the page redraws
// from the answer, or from a `settings` event when another page or a script changed them.
// Rotating the token (POST /api/settings/token) keeps this page signed in: the answer sets
// its cookie, and the live connection is told the new token before the server ends it.
import { $, $$, el, api, on, reloadOnConnect, initial, toast, rate, signIn } from './app.js';

const MiB = 1024 * 1024;
const FLAGS = { maxUploadRate: '--max-upload-rate', shared: '--shared', multicast: '--no-multicast', bootstrap: '--bootstrap', httpToken: '--http-token' };

let settings = (initial() || {}).settings;

/** Send a change; the node's answer is what the page shows. Throws with the API's message. */
async function change(patch) {
  apply(await api('PATCH', '/api/settings', patch));
}

function apply(s) {
  if (!s) return;
  settings = s;
  $('#config-file').textContent = s.configFile;
  $('#upload-rate-now').textContent = s.maxUploadRate > 0 ? rate(s.maxUploadRate) : 'no limit';
  const input = $('#upload-rate');
  if (document.activeElement !== input) {
    // MiB/s when that reads well (1.5, 2.25), else KiB/s: as the server renders it.
    const inMiB = s.maxUploadRate >= MiB && Number.isInteger((s.maxUploadRate * 100) / MiB);
    $('#upload-rate-unit').value = String(inMiB ? MiB : 1024);
    input.value = String(inMiB ? s.maxUploadRate / MiB : Math.round((s.maxUploadRate / 1024) * 100) / 100);
  }
  $('#multicast').checked = s.multicast;
  const url = $('#bootstrap-url');
  if (document.activeElement !== url) url.value = s.bootstrap || '';
  $('#bootstrap-clear').hidden = !s.bootstrap;
  drawFolders(s);
  for (const p of $$('[data-pinned]')) {
    const key = p.dataset.pinned;
    p.hidden = !s.fromCommandLine.includes(key);
    p.textContent = p.hidden ? '' : `This node was started with ${FLAGS[key]}: the command line wins again at the next start.`;
  }
}

function drawFolders(s) {
  const rows = s.shared.map((f) =>
    el('li', { data: { folder: f } }, el('span', { class: 'mono path' }, f), el('button', { class: 'btn sm danger', type: 'button', 'data-remove': true }, 'Stop sharing')),
  );
  $('#shared-list').replaceChildren(...rows, $('#downloads-folder'));
}

/** Disable `button` while `job` runs; a failure shows in `errorBox` (or a toast). */
async function busy(button, errorBox, job) {
  if (errorBox) errorBox.hidden = true;
  button.disabled = true;
  try {
    await job();
    return true;
  } catch (err) {
    if (errorBox) {
      errorBox.textContent = err.message;
      errorBox.hidden = false;
    } else toast(err.message);
    return false;
  } finally {
    button.disabled = false;
  }
}

// ---- rate limits ------------------------------------------------------------------------------

$('#rate-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const value = Number($('#upload-rate').value.trim());
  if (!Number.isFinite(value) || value < 0) return toast('Give a number: 0 means no limit.');
  const bytes = Math.round(value * Number($('#upload-rate-unit').value));
  const button = e.target.querySelector('button[type="submit"]');
  if (await busy(button, null, () => change({ maxUploadRate: bytes }))) toast(bytes > 0 ? `Upload limited to ${rate(bytes)}` : 'No upload limit', 'ok');
  $('#upload-rate').blur();
});

// ---- discovery ---------------------------------------------------------------------------------

const discoveryError = $('#discovery-error');
$('#multicast').addEventListener('change', async (e) => {
  const on = e.target.checked;
  if (!(await busy(e.target, discoveryError, () => change({ multicast: on })))) e.target.checked = settings.multicast;
});
$('#bootstrap-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const url = $('#bootstrap-url').value.trim();
  const button = e.target.querySelector('button[type="submit"]');
  if (await busy(button, discoveryError, () => change({ bootstrap: url === '' ? null : url }))) toast(url ? `Bootstrap server: ${url}` : 'No bootstrap server', 'ok');
});
$('#bootstrap-clear').addEventListener('click', async (e) => {
  if (await busy(e.target, discoveryError, () => change({ bootstrap: null }))) toast('No bootstrap server', 'ok');
});

// ---- shared folders ----------------------------------------------------------------------------

const folderError = $('#folder-error');
$('#add-folder').addEventListener('submit', async (e) => {
  e.preventDefault();
  const dir = $('#folder-path').value.trim();
  const button = e.target.querySelector('button[type="submit"]');
  if (await busy(button, folderError, () => change({ shared: [...settings.shared, dir] }))) {
    toast(`Sharing ${dir}`, 'ok');
    e.target.reset();
  }
});
$('#shared-list').addEventListener('click', async (e) => {
  const button = e.target instanceof Element ? e.target.closest('button[data-remove]') : null;
  if (!button) return;
  const dir = button.closest('li').dataset.folder;
  if (await busy(button, folderError, () => change({ shared: settings.shared.filter((f) => f !== dir) }))) toast(`No longer sharing ${dir}`, 'ok');
});

// ---- access token ------------------------------------------------------------------------------

const rotate = $('#rotate-token');
if (rotate) {
  const box = $('#rotate-box');
  const ask = () =>
    box.replaceChildren(
      el('span', { class: 'confirm' }, el('span', {}, 'Sign out every other browser and script?'),
        el('button', { class: 'btn sm danger solid', type: 'button', id: 'rotate-yes', onclick: doRotate }, 'Yes, rotate'),
        el('button', { class: 'btn sm', type: 'button', id: 'rotate-no', onclick: () => box.replaceChildren(rotate) }, 'Keep it')),
    );
  rotate.addEventListener('click', ask);
  async function doRotate(e) {
    await busy(e.target, null, async () => {
      const { token, openUrl } = await api('POST', '/api/settings/token');
      // The cookie came with the answer; the live connection is ended by the server and
      // comes back with the new token.
      signIn(token);
      $('#token-url').textContent = openUrl;
      $('#token-copy').setAttribute('data-copy', openUrl);
      $('#token-result').hidden = false;
      toast('New access token in use', 'ok');
    });
    box.replaceChildren(rotate);
  }
}

on('settings', apply);
reloadOnConnect('/api/settings', apply);
apply(settings);
