// DOM: building elements (never from markup), tables, errors, and the
// display of times and picked dates.

import { L } from './labels.js';

// Builds DOM without innerHTML so that API text (names, findings) can never
// inject markup. attrs: on* keys become listeners; children may be strings.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    // Through the CSSOM: the CSP (default-src 'self') refuses style attributes.
    else if (k === 'style') el.style.cssText = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export function table(headers, rows, attrs = {}) {
  return h('table', attrs,
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', {}, x)))),
    h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: headers.length, class: 'empty' }, L('无数据', 'Nothing here')))));
}

export function errorBox(e) {
  return h('div', { class: 'error', role: 'alert' }, L('出错了', 'Error'), ': ', e.message || String(e));
}

// Times come as RFC 3339 in city time; show them without the offset noise.
export const fmtTime = (s) => (s ? s.replace('T', ' ').replace(/(\.\d+)?([+-]\d\d:\d\d|Z)$/, '') : '—');


// A button that downloads `path()` (a function: the filters of the moment)
// as an Excel file; errors show beside it.
// `label` names what is exported when a page has more than one list.
export function exportButton(id, path, filename, download, label = L('导出 Excel', 'Export to Excel')) {
  const msg = h('span', { class: 'error' });
  const button = h('button', { type: 'button', class: 'export', id, onclick: async () => {
    msg.textContent = '';
    try { await download(path(), filename); } catch (e) { msg.textContent = e.message || String(e); }
  } }, label);
  return h('span', { class: 'export-box' }, button, msg);
}
