// Permit applications (不见面审批). On the firm view: the form to apply
// (the city's sites and routes from the loaded geofences, the firm's own
// vehicles) and the firm's applications, each automatic check with its
// result and why. For the bureau (#/applications): the review queue, to
// approve or reject with a reason (admin and dept:urban; the other
// departments read), and what was decided.

import { api, download, session } from './http.js';
import { exportButton, h, table, errorBox, fmtTime } from './dom.js';
import { L, statusLabel } from './labels.js';

const fencesOf = (fences, kind) => fences.features.map((f) => f.properties)
  .filter((p) => p.kind === kind).sort((a, b) => a.id.localeCompare(b.id));
const fenceName = (p) => (p.name ? `${p.id} — ${p.name}` : p.id);

// Each check on a line: ✓ or ✗, its name, why (Chinese, then English).
function checksList(a) {
  return h('ul', { class: 'app-checks' }, a.checks.map((c) => h('li', { class: `app-check ${c.result}`, 'data-check': c.name, 'data-result': c.result },
    h('b', {}, c.result === 'pass' ? '✓ ' : '✗ ', L(c.label_zh, c.name)), ' — ', c.reason_zh || c.reason,
    c.reason_zh && c.reason_zh !== c.reason ? h('span', { class: 'muted' }, ' · ', c.reason) : null)));
}

const HEAD = [L('编号', 'No.'), L('企业', 'Firm'), L('车辆', 'Vehicles'), L('场地', 'Sites'), L('路线', 'Routes'),
  L('有效期', 'Valid'), L('提交', 'Submitted'), L('状态', 'Status'), L('自动审查', 'Automatic checks')];

function row(a, actions) {
  return h('tr', { 'data-application': a.id, 'data-status': a.status },
    h('td', {}, `#${a.id}`), h('td', {}, a.firm_id), h('td', {}, a.plates.join(', ')),
    h('td', {}, `${a.source_site} → ${a.disposal_site}`), h('td', {}, a.routes.join(', ')),
    h('td', {}, `${a.valid_from} — ${a.valid_until}`), h('td', {}, fmtTime(a.submitted_at)),
    h('td', {}, h('span', { class: `pill app-${a.status}`, 'data-status': a.status }, statusLabel(a.status)),
      a.permit_id ? h('div', {}, L('准运证', 'Permit'), ' ', h('b', { class: 'permit-id' }, a.permit_id)) : null,
      a.reason ? h('div', { class: 'muted app-reason' }, L('意见', 'Reason'), ': ', a.reason) : null,
      a.decided_by ? h('div', { class: 'muted' }, a.decided_by, ' ', fmtTime(a.decided_at)) : null),
    h('td', {}, checksList(a)),
    actions === undefined ? null : h('td', { class: 'app-actions' }, actions));
}

// The firm's part of the firm view: the form, then its applications.
export function applicationSections(view, { vehicles, fences }) {
  const listBox = h('div', { id: 'my-applications' });
  const result = h('div', { id: 'application-result', 'aria-live': 'polite' });
  const refresh = async () => {
    try {
      const list = await api('/api/v1/permit-applications?limit=200');
      listBox.replaceChildren(table(HEAD, list.items.map((a) => row(a)), { id: 'applications' }));
    } catch (e) { listBox.replaceChildren(errorBox(e)); }
  };
  const select = (name, kind) => h('select', { name, required: true },
    fencesOf(fences, kind).map((p) => h('option', { value: p.id }, fenceName(p))));
  const boxes = (name, items) => h('div', { class: 'pick-list', 'data-pick': name },
    items.map(([value, text]) => h('label', {}, h('input', { type: 'checkbox', name, value }), ' ', text)));
  const form = h('form', { class: 'app-form', id: 'application-form', onsubmit: async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const start = f.get('start');
    const end = f.get('end');
    const body = {
      plates: f.getAll('plate'), source_site: f.get('source_site'), disposal_site: f.get('disposal_site'),
      routes: f.getAll('route'), windows: start && end ? [{ start, end }] : [],
      valid_from: f.get('valid_from'), valid_until: f.get('valid_until'),
    };
    result.replaceChildren();
    try {
      const a = await api('/api/v1/permit-applications', { method: 'POST', body });
      result.append(h('p', {}, L('已提交申请', 'Application submitted'), ` #${a.id} `,
        a.passed ? L('自动审查全部通过，等待审批', 'every check passed; awaiting the bureau')
          : h('span', { class: 'error' }, L('部分自动审查未通过', 'some checks failed'))), checksList(a));
      await refresh();
    } catch (err) { result.append(errorBox(err)); }
  } },
  h('div', { class: 'app-grid' },
    h('div', {}, h('h3', {}, L('车辆（本企业）', 'Vehicles (your own)')),
      boxes('plate', vehicles.items.map((v) => [v.plate, v.plate]))),
    h('div', {},
      h('label', {}, L('出土工地', 'Source site'), ' ', select('source_site', 'source_site')), h('br'),
      h('label', {}, L('消纳场', 'Disposal site'), ' ', select('disposal_site', 'disposal_site')), h('br'),
      h('label', {}, L('有效期起', 'Valid from'), ' ', h('input', { type: 'date', name: 'valid_from', required: true })), h('br'),
      h('label', {}, L('有效期止', 'Valid until'), ' ', h('input', { type: 'date', name: 'valid_until', required: true })), h('br'),
      h('label', {}, L('运输时段', 'Daily window'), ' ', h('input', { type: 'time', name: 'start' }), ' – ', h('input', { type: 'time', name: 'end' })),
      h('p', { class: 'muted' }, L('不填时段即全天', 'No window: any time of day'))),
    h('div', {}, h('h3', {}, L('核准路线', 'Routes')),
      boxes('route', fencesOf(fences, 'route').map((p) => [p.id, fenceName(p)])))),
  h('button', { type: 'submit', id: 'application-submit' }, L('提交申请', 'Apply')));
  view.append(
    h('section', { class: 'card', id: 'apply' }, h('h2', {}, L('申请准运证（不见面审批）', 'Apply for a permit (online)')), form, result),
    h('section', { class: 'card' }, h('h2', {}, L('我的申请', 'My applications')), listBox));
  return refresh();
}

// The bureau's review queue and the decided applications.
export async function reviewPage(view) {
  const role = session.role.role;
  const mayDecide = role === 'admin' || role === 'dept:urban';
  const queue = h('div', { id: 'review-queue' });
  const decided = h('div', { id: 'decided-applications' });
  async function decide(a, approve, reasonInput, msg) {
    msg.replaceChildren();
    const reason = reasonInput.value.trim();
    if (!approve && !reason) {
      msg.append(h('span', { class: 'error' }, L('驳回须填写理由', 'A rejection needs a reason')));
      return;
    }
    try {
      await api(`/api/v1/permit-applications/${a.id}/decision`, { method: 'POST', body: { approve, reason: reason || null } });
      await load();
    } catch (e) {
      msg.append(errorBox(e));
      if (e.body && e.body.checks) msg.append(checksList({ checks: e.body.checks }));
    }
  }
  function actions(a) {
    if (!mayDecide) return h('span', { class: 'muted' }, L('仅城管与管理员审批', 'Urban management and admin decide'));
    const reason = h('input', { name: 'reason', class: 'reason', placeholder: L('审批意见', 'Reason'), size: 18 });
    const msg = h('div', { class: 'decision-msg' });
    return [reason, ' ',
      h('button', { type: 'button', class: 'approve', onclick: () => decide(a, true, reason, msg) }, L('批准', 'Approve')), ' ',
      h('button', { type: 'button', class: 'reject', onclick: () => decide(a, false, reason, msg) }, L('驳回', 'Reject')), msg];
  }
  async function load() {
    try {
      // An approval cut short (approving) waits in the queue too: approving
      // it again finishes it.
      const [waiting, stuck, all] = await Promise.all([
        api('/api/v1/permit-applications?status=submitted&limit=200'),
        api('/api/v1/permit-applications?status=approving&limit=200'),
        api('/api/v1/permit-applications?limit=200')]);
      const open = [...stuck.items, ...waiting.items];
      queue.replaceChildren(table([...HEAD, ''], open.map((a) => row(a, actions(a))), { id: 'review-table' }),
        h('p', { class: 'muted' }, `${L('待审批', 'Waiting')}: ${waiting.total + stuck.total}`));
      decided.replaceChildren(table(HEAD, all.items.filter((a) => a.status === 'approved' || a.status === 'rejected')
        .map((a) => row(a)), { id: 'decided-table' }));
    } catch (e) { queue.replaceChildren(errorBox(e)); }
  }
  view.append(h('h1', {}, L('准运证审批', 'Permit applications')),
    h('section', { class: 'card' }, h('h2', {}, L('待审批', 'Review queue'), ' ',
      exportButton('export-applications', () => '/api/v1/permit-applications', 'applications.xlsx', download)), queue),
    h('section', { class: 'card' }, h('h2', {}, L('已审批', 'Decided')), decided));
  await load();
  return null;
}
