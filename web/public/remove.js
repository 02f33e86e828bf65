// Removing a finished (or failed) download from the list asks, explicitly, what becomes of its
// file: keep it (it stays where it is, and stays shared) or delete it (and stop sharing it).
import { el, icon } from './app.js';

/**
 * Ask about `d` in a modal dialog; resolves with 'keep', 'delete', or null when the user
 * changed their mind (Cancel, Escape, a click beside the dialog).
 */
export function askRemove(d) {
  const done = d.state === 'done';
  const where = d.path ? el('span', { class: 'mono' }, d.path) : 'the downloads folder';
  const dialog = el(
    'dialog',
    { class: 'dialog remove-dialog', 'aria-labelledby': 'remove-title' },
    el(
      'form',
      { class: 'dialog-body', method: 'dialog' },
      el('div', { class: 'dialog-head' }, el('h2', { id: 'remove-title' }, `Remove “${d.name}” from the list?`)),
      el(
        'p',
        { class: 'dialog-text' },
        done ? ['The file is in ', where, '. Keep it there and go on sharing it, or delete it and stop sharing it.'] : ['It failed. Delete what it downloaded too, or leave it where it is.'],
      ),
      el(
        'div',
        { class: 'dialog-foot' },
        el('button', { class: 'btn', type: 'submit', value: 'cancel', data: { choice: 'cancel' } }, 'Cancel'),
        el('button', { class: 'btn', type: 'submit', value: 'keep', data: { choice: 'keep' } }, done ? 'Remove from list' : 'Remove from list, keep what came'),
        el('button', { class: 'btn danger solid', type: 'submit', value: 'delete', data: { choice: 'delete' } }, icon('x'), done ? 'Remove and delete the file' : 'Remove and delete what came'),
      ),
    ),
  );
  document.body.append(dialog);
  return new Promise((resolve) => {
    dialog.addEventListener('click', (e) => {
      if (e.target === dialog) dialog.close('cancel');
    });
    dialog.addEventListener('close', () => {
      const v = dialog.returnValue;
      dialog.remove();
      resolve(v === 'keep' || v === 'delete' ? v : null);
    });
    dialog.showModal();
    dialog.querySelector('[data-choice="cancel"]').focus();
  });
}
