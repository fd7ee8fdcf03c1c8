// Case list (filters, paging) and the case page (episode map, the checks of
// every department side by side, the viewer's own check form, the audit).

import { api, query, session } from './http.js';
import { h, table, errorBox, fmtTime } from './dom.js';
import { L, caseStatuses, codeLabel, codes, deptLabel, deptName, departments, nextStatuses, statusLabel } from './labels.js';
import { MapView } from './map.js';

const PAGE = 20;
const show = (x) => (x === null || x === undefined ? '—' : typeof x === 'object' ? JSON.stringify(x) : x);
// Kept across navigation so that "back to the list" returns to the same page.
const filters = { department: '', status: '', code: '', plate: '', from: '', to: '', offset: 0 };

function select(name, options, value) {
  return h('select', { name }, h('option', { value: '' }, L('全部', 'All')),
    options.map(([v, label]) => h('option', { value: v, selected: v === value }, label)));
}

export async function casesPage(view) {
  const form = h('form', { class: 'filters card', id: 'case-filters' },
    h('label', {}, L('部门', 'Department'), ' ', select('department', departments().map((d) => [d, deptLabel(d)]), filters.department)),
    h('label', {}, L('状态', 'Status'), ' ', select('status', caseStatuses().map((s) => [s, statusLabel(s)]), filters.status)),
    h('label', {}, L('违规', 'Code'), ' ', select('code', codes().map((c) => [c, codeLabel(c)]), filters.code)),
    h('label', {}, L('车牌', 'Plate'), ' ', h('input', { name: 'plate', value: filters.plate, size: 10 })),
    h('label', {}, L('从', 'From'), ' ', h('input', { type: 'date', name: 'from', value: filters.from })),
    h('label', {}, L('到', 'To'), ' ', h('input', { type: 'date', name: 'to', value: filters.to })),
    h('button', {}, L('筛选', 'Filter')));
  const out = h('div', { id: 'case-list' });
  view.append(h('h1', {}, L('案件', 'Cases')), form, h('section', { class: 'card' }, out));

  const load = async () => {
    out.replaceChildren(h('p', { class: 'loading' }, L('加载中', 'Loading')));
    try {
      const r = await api(`/api/v1/cases${query({
        department: filters.department, status: filters.status, code: filters.code, plate: filters.plate,
        from: filters.from, to: filters.to, order: 'overdue', limit: PAGE, offset: filters.offset,
      })}`);
      const last = Math.min(filters.offset + PAGE, r.total);
      const go = (off) => () => { filters.offset = off; load(); };
      out.replaceChildren(
        table(['#', L('车牌', 'Plate'), L('企业', 'Firm'), L('违规', 'Codes'), L('各部门核查', 'Checks'), L('立案', 'Opened'), L('状态', 'Status')],
          r.items.map((c) => h('tr', { 'data-case': c.id, class: c.overdue ? 'overdue' : null, 'data-overdue': c.overdue ? 'true' : null },
            h('td', {}, h('a', { href: `#/case/${c.id}` }, `#${c.id}`)), h('td', {}, c.plate), h('td', {}, c.firm_id),
            h('td', {}, c.codes.map((x) => h('span', { class: 'pill' }, codeLabel(x)))),
            h('td', {}, c.checks.map((k) => h('span', { class: `pill check-${k.status}${k.overdue ? ' overdue' : ''}`, title: `${k.status} · ${L('期限', 'due')} ${fmtTime(k.due_at)}` },
              deptName(k.department), ': ', k.status, k.overdue ? h('b', { class: 'overdue-mark' }, ' ', L('逾期', 'overdue')) : null))),
            h('td', {}, fmtTime(c.opened_at)), h('td', {}, statusLabel(c.status)))), { id: 'cases' }),
        h('div', { class: 'pager' },
          h('button', { type: 'button', disabled: filters.offset === 0, onclick: go(Math.max(0, filters.offset - PAGE)) }, L('上一页', 'Previous')),
          h('span', {}, r.total ? `${filters.offset + 1}–${last} / ${r.total}` : '0'),
          h('button', { type: 'button', disabled: last >= r.total, onclick: go(filters.offset + PAGE) }, L('下一页', 'Next'))));
    } catch (e) { out.replaceChildren(errorBox(e)); }
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    for (const k of ['department', 'status', 'code', 'plate', 'from', 'to']) filters[k] = form.elements[k].value.trim();
    filters.offset = 0;
    load();
  });
  await load();
  return null;
}

function checkForm(c, check, rerender) {
  const next = nextStatuses(check.status);
  if (!next.length) return h('p', { class: 'muted' }, L('本核查已结案', 'This check is closed'));
  const status = h('select', { name: 'status' }, next.map((s) => h('option', { value: s }, statusLabel(s))));
  const finding = h('textarea', { name: 'finding', rows: 2, placeholder: L('调查结论', 'Finding') }, check.finding || '');
  const party = h('input', { name: 'party', placeholder: L('处罚对象', 'Penalised party'), size: 14 });
  const amount = h('input', { name: 'amount', type: 'number', min: 0, step: 'any', placeholder: L('金额(元)', 'Amount CNY'), size: 8 });
  const msg = h('p', { class: 'form-msg' });
  return h('form', { class: 'check-form', id: 'check-form', onsubmit: async (e) => {
    e.preventDefault();
    const body = { status: status.value };
    if (finding.value.trim()) body.finding = finding.value.trim();
    if (party.value.trim() || amount.value) body.penalty = { party: party.value.trim(), amount_cny: Number(amount.value || 0) };
    try {
      rerender(await api(`/api/v1/cases/${c.id}/checks/${check.department}`, { method: 'POST', body }));
    } catch (err) { msg.replaceChildren(errorBox(err)); }
  } },
  h('h4', {}, L('更新本部门核查', 'Advance our check')),
  h('label', {}, L('状态', 'Status'), ' ', status), finding,
  h('div', {}, party, ' ', amount), h('button', {}, L('提交', 'Submit')), msg);
}

// How sure a position-judged violation is: the band of the most likely value at the
// test's confidence, and the terminal's GPS noise it was weighed against.
function uncertaintyText(u) {
  if (!u) return '—';
  const pct = (u.confidence * 100).toFixed(u.confidence >= 0.999 ? 2 : 1);
  return `${Number(u.low).toFixed(1)} – ${Number(u.high).toFixed(1)} (${pct}%; GPS σ ${Number(u.sigma_m).toFixed(1)} m, ${u.fixes} ${L('点', 'fixes')})`;
}

export async function casePage(view, id) {
  const [c, fences] = await Promise.all([api(`/api/v1/cases/${encodeURIComponent(id)}`), api('/api/v1/geofences')]);
  const mine = session.role.department;
  const admin = session.role.role === 'admin';
  const mapBox = h('div', { class: 'map-box' });
  const checksBox = h('div', { class: 'checks', id: 'checks' });
  const auditBox = h('div', { id: 'audit' });
  const header = h('div');
  view.append(h('p', {}, h('a', { href: '#/cases' }, '← ', L('案件列表', 'All cases'))), header,
    h('section', { class: 'card' }, h('h2', {}, L('事件轨迹', 'Episode track')), mapBox),
    h('section', { class: 'card' }, h('h2', {}, L('一案多查 各部门核查', 'Checks by department')), checksBox),
    h('section', { class: 'card' }, h('h2', {}, L('违规', 'Violations')), table(
      ['#', L('违规', 'Code'), L('开始', 'Started'), L('结束', 'Ended'), L('测量值', 'Measured'), L('置信区间', 'Confidence band'), L('围栏', 'Fences')],
      c.violations.map((v) => h('tr', {}, h('td', {}, v.id), h('td', {}, codeLabel(v.code)), h('td', {}, fmtTime(v.started_at)),
        h('td', {}, v.ended_at ? fmtTime(v.ended_at) : L('进行中', 'ongoing')), h('td', {}, Number(v.measured).toFixed(1)),
        h('td', { class: 'uncertainty' }, uncertaintyText(v.uncertainty)), h('td', {}, v.fences.join(', ')))),
      { id: 'violations' })),
    h('section', { class: 'card' }, h('h2', {}, L('审计记录', 'Audit trail')), auditBox));

  const render = (c) => {
    header.replaceChildren(...[h('h1', { id: 'case-title' }, L('案件', 'Case'), ` #${c.id} `, h('small', {}, c.plate, ' · ', c.firm_id, ' · ', statusLabel(c.status))),
      h('p', {}, c.codes.map((x) => h('span', { class: 'pill' }, codeLabel(x))), ' ',
        L('立案', 'Opened'), ' ', fmtTime(c.opened_at), c.closed_at ? [' · ', L('结案', 'Closed'), ' ', fmtTime(c.closed_at)] : null),
      c.parties.length ? h('p', {}, L('一超四罚 当事方', 'Penalised parties'), ': ', c.parties.map((p) => `${p.role}: ${p.name}`).join(' · ')) : null].filter(Boolean));
    checksBox.replaceChildren(...c.checks.map((k) => h('div', { class: `check check-${k.status}${k.department === mine ? ' mine' : ''}`, 'data-dept': k.department },
      h('h3', {}, deptLabel(k.department)),
      h('p', { class: 'check-status' }, statusLabel(k.status)),
      h('p', { class: `check-due${k.overdue ? ' overdue' : ''}` }, L('处置期限', 'Due'), ': ', fmtTime(k.due_at),
        k.overdue ? h('b', { class: 'overdue-mark' }, ' ', L('已逾期', 'overdue')) : null),
      h('p', {}, L('结论', 'Finding'), ': ', k.finding || '—'),
      h('p', {}, L('处罚', 'Penalty'), ': ', k.penalty ? `${k.penalty.party} ¥${k.penalty.amount_cny}` : '—'),
      k.department === mine || admin ? checkForm(c, k, render) : null)));
    auditBox.replaceChildren(table([L('时间', 'When'), L('操作人', 'Who'), L('部门', 'Department'), L('字段', 'Field'), L('之前', 'Before'), L('之后', 'After')],
      c.audit.map((a) => h('tr', { class: 'audit-line' }, h('td', {}, fmtTime(a.at)), h('td', {}, a.actor), h('td', {}, a.department ? deptLabel(a.department) : '—'),
        h('td', {}, a.field), h('td', {}, show(a.before)), h('td', {}, show(a.after))))));
  };
  render(c);

  // The map: fences the violations name, the vehicle's track over the
  // episode, and where each violation began.
  const map = new MapView(mapBox, { height: 400 });
  const involved = new Set(c.violations.flatMap((v) => v.fences));
  map.drawFences({ type: 'FeatureCollection', features: fences.features.filter((f) => involved.has(f.properties.id)) }, { highlight: [...involved] });
  const pts = [];
  try {
    const track = await api(c.track);
    map.drawTrack(track.geometry.coordinates, { title: `${c.plate} (${track.properties.count})` });
    pts.push(...track.geometry.coordinates);
  } catch (e) { mapBox.append(errorBox(e)); }
  for (const v of c.violations) {
    map.marker({ lon: v.lon, lat: v.lat, cls: 'violation-point', label: v.code, title: `${v.code} ${fmtTime(v.started_at)}` });
    pts.push([v.lon, v.lat]);
  }
  map.fit(pts.length ? pts : undefined);
  return null;
}
