// The console's shell: sign-in, navigation by role, and hash routing
// (#/live, #/cases, #/case/ID, #/firm, #/stats, #/credit[/FIRM],
// #/inspections, #/applications). Pages live in pages.js, cases.js,
// credit.js and applications.js; each
// returns a cleanup function for when it is left.
// Shared: http.js (the API), dom.js (elements), labels.js (names from the
// server), map.js (the map).

import { api, session } from './http.js';
import { h, errorBox } from './dom.js';
import { L, loadMeta } from './labels.js';
import { livePage, firmPage, statsPage } from './pages.js';
import { casesPage, casePage, trackPage } from './cases.js';
import { creditPage, inspectionsPage } from './credit.js';
import { reviewPage } from './applications.js';

const main = document.getElementById('main');
let leave = null;

// Which pages a role may open follows the API: firms get no alert stream
// and no statistics (both are 403 for them).
function pagesFor(role) {
  const firm = role.role.startsWith('firm:');
  return [
    ['live', L('实时', 'Live'), !firm],
    ['cases', L('案件', 'Cases'), true],
    ['firm', firm ? L('本企业', 'My firm') : L('企业', 'Firms'), true],
    ['stats', L('统计', 'Statistics'), !firm],
    ['credit', L('信用', 'Credit'), true],
    ['inspections', L('双随机', 'Inspections'), !firm],
    // Firms apply on their own page (#/firm); the bureau reviews here.
    ['applications', L('准运审批', 'Permit reviews'), !firm],
  ].filter((p) => p[2]);
}

function signInPage(message) {
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', placeholder: 'mw_…', required: true, size: 48 });
  const form = h('form', { class: 'card signin', id: 'signin', onsubmit: async (e) => {
    e.preventDefault();
    session.token = input.value.trim();
    await start();
  } },
  h('h1', {}, L('登录', 'Sign in')),
  h('p', {}, L('请输入您的 API 令牌。', 'Enter your API token.')),
  h('label', { for: 'token' }, L('令牌', 'Token')), ' ', input, ' ',
  h('button', { type: 'submit' }, L('登录', 'Sign in')),
  message ? h('p', { class: 'error' }, message) : null);
  document.getElementById('nav').replaceChildren();
  document.getElementById('who').replaceChildren();
  main.replaceChildren(form);
  input.focus();
}

function signOut() {
  session.token = null;
  session.role = null;
  if (leave) { leave(); leave = null; }
  location.hash = '';
  signInPage();
}

async function start() {
  if (!session.token) return signInPage();
  try {
    session.role = await api('/api/v1/whoami');
    await loadMeta();
  } catch (e) {
    session.token = null;
    return signInPage(e.status === 401 ? L('令牌无效', 'Unknown token') : e.message);
  }
  const pages = pagesFor(session.role);
  document.getElementById('nav').replaceChildren(...pages.map(([id, label]) => h('a', { href: `#/${id}`, 'data-page': id }, label)));
  document.getElementById('who').replaceChildren(
    h('span', { class: 'role', id: 'role' }, session.role.role), ' ',
    h('button', { type: 'button', class: 'link', id: 'signout', onclick: signOut }, L('退出', 'Sign out')));
  // Setting the hash routes through the hashchange listener.
  if (!location.hash || location.hash === '#/') location.hash = `#/${pages[0][0]}`;
  else route();
}

async function route() {
  if (!session.role) return;
  if (leave) { leave(); leave = null; }
  const [, page, arg] = (location.hash || '').split('/');
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === page || (page === 'case' && a.dataset.page === 'cases') || (page === 'track' && a.dataset.page === 'firm'));
  const allowed = pagesFor(session.role).map((p) => p[0]);
  const view = h('div', { class: 'page' });
  main.replaceChildren(view);
  try {
    if (page === 'case' && arg) leave = await casePage(view, decodeURIComponent(arg));
    else if (page === 'cases') leave = await casesPage(view);
    else if (page === 'track' && arg) leave = await trackPage(view, decodeURIComponent(arg));
    else if (page === 'live' && allowed.includes('live')) leave = await livePage(view);
    else if (page === 'firm') leave = await firmPage(view);
    else if (page === 'stats' && allowed.includes('stats')) leave = await statsPage(view);
    else if (page === 'credit') leave = await creditPage(view, arg && decodeURIComponent(arg));
    else if (page === 'inspections' && allowed.includes('inspections')) leave = await inspectionsPage(view);
    else if (page === 'applications' && allowed.includes('applications')) leave = await reviewPage(view);
    else if (page) view.append(h('p', {}, L('没有这个页面', 'No such page')));
  } catch (e) {
    if (e.status === 401) return signOut();
    view.append(errorBox(e));
  }
}

window.addEventListener('hashchange', route);
start();
