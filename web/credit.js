// Firm credit (信用评价) and random inspections (双随机一公开). A firm sees
// its own ledger; departments and admin see every firm by grade, and draw
// inspections and record their results.

import { api, session } from './http.js';
import { h, table, errorBox, fmtTime } from './dom.js';
import { L, codeLabel, deptLabel, departments } from './labels.js';

const gradeBadge = (g) => h('span', { class: `badge grade grade-${g}`, 'data-grade': g }, g);

async function ledger(view, firm) {
  const c = await api(`/api/v1/firms/${encodeURIComponent(firm)}/credit`);
  view.append(
    h('section', { class: 'card', id: 'credit-ledger', 'data-firm': c.firm_id },
      h('h2', {}, L('信用档案', 'Credit ledger'), ` — ${c.firm_id} (${c.cycle})`),
      h('p', {}, L('得分', 'Score'), `: `, h('b', { id: 'credit-score' }, `${c.score} / ${c.base}`), ' ', gradeBadge(c.grade),
        c.blacklisted ? h('span', { class: 'error' }, ' ', L('已列入黑名单：不予新办准运证', 'Blacklisted: no new permits')) : null),
      table([L('违规', 'Violation'), L('类型', 'Code'), L('扣分', 'Points'), L('案件', 'Case'), L('决定时间', 'Decided')],
        c.deductions.map((d) => h('tr', {}, h('td', {}, `#${d.violation_id}`), h('td', {}, codeLabel(d.code)), h('td', {}, `-${d.points}`),
          h('td', {}, h('a', { href: `#/case/${d.case_id}` }, `#${d.case_id}`)), h('td', {}, fmtTime(d.at)))), { id: 'credit-deductions' }),
      h('h3', {}, L('现有准运证', 'Existing permits')),
      table([L('准运证', 'Permit'), L('状态', 'Status'), L('有效期', 'Valid')],
        c.permits.map((p) => h('tr', {}, h('td', {}, p.id), h('td', {}, p.status), h('td', {}, `${p.valid_from} – ${p.valid_until}`))))));
}

export async function creditPage(view, firmArg) {
  const own = session.role.firm_id;
  view.append(h('h1', {}, L('企业信用评价', 'Firm credit rating')));
  if (own) return ledger(view, own);
  const all = await api('/api/v1/credit');
  const byGrade = {};
  for (const f of all.items) byGrade[f.grade] = (byGrade[f.grade] || 0) + 1;
  const order = (a, b) => a.grade.localeCompare(b.grade) || a.score - b.score;
  view.append(h('section', { class: 'card' },
    h('h2', {}, L('各等级企业', 'Firms by grade'), ` (${all.cycle})`),
    h('p', { id: 'grade-counts' }, ['A', 'B', 'C', 'D'].map((g) => h('span', {}, gradeBadge(g), ` ${byGrade[g] || 0} `))),
    table([L('企业', 'Firm'), L('名称', 'Name'), L('得分', 'Score'), L('等级', 'Grade'), L('扣分记录', 'Deductions')],
      [...all.items].sort(order).map((f) => h('tr', { 'data-firm': f.firm_id },
        h('td', {}, h('a', { href: `#/credit/${encodeURIComponent(f.firm_id)}` }, f.firm_id)), h('td', {}, f.name),
        h('td', {}, f.score), h('td', {}, gradeBadge(f.grade)), h('td', {}, f.deductions))), { id: 'credit-firms' })));
  if (firmArg) await ledger(view, firmArg);
}

export async function inspectionsPage(view) {
  const out = h('div', { id: 'draw-result' });
  const deptBoxes = departments().map((d) => h('label', {}, h('input', { type: 'checkbox', name: 'dept', value: d, checked: true }), deptLabel(d), ' '));
  const form = h('form', { class: 'card', id: 'draw-form', onsubmit: async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const body = { item: f.get('item'), population: f.get('population'), inspectors_per_object: Number(f.get('per')) || 2,
      departments: f.getAll('dept') };
    const size = String(f.get('size') || '').trim();
    if (size.endsWith('%')) body.proportion = Number(size.slice(0, -1)) / 100; else body.count = Number(size);
    if (String(f.get('seed') || '').trim()) body.seed = Number(f.get('seed'));
    out.replaceChildren();
    try {
      const d = await api('/api/v1/inspections/draws', { method: 'POST', body });
      out.append(h('p', {}, L('抽取完成', 'Drawn'), ` #${d.id} seed=${d.seed} hash=${d.population_hash.slice(0, 16)}…`),
        table([L('对象', 'Object'), L('检查人员', 'Inspectors')], d.objects.map((o) => h('tr', {}, h('td', {}, o.id),
          h('td', {}, o.inspectors.map((i) => `${i.id} (${i.department})`).join(', '))))));
      await list();
    } catch (err) { out.append(errorBox(err)); }
  } },
  h('h2', {}, L('双随机抽查', 'Random inspection draw')),
  h('label', {}, L('检查事项', 'Item'), ' ', h('input', { name: 'item', required: true, size: 24 })), ' ',
  h('label', {}, L('对象', 'Population'), ' ', h('select', { name: 'population' },
    [['firms', L('企业', 'Firms')], ['vehicles', L('车辆', 'Vehicles')], ['source_sites', L('工地', 'Source sites')], ['disposal_sites', L('消纳场', 'Disposal sites')]]
      .map(([v, t]) => h('option', { value: v }, t)))), ' ',
  h('label', {}, L('数量或比例', 'Count or %'), ' ', h('input', { name: 'size', value: '5', size: 5 })), ' ',
  h('label', {}, L('每对象人数', 'Per object'), ' ', h('input', { name: 'per', value: '2', size: 2 })), ' ',
  h('label', {}, L('随机种子', 'Seed'), ' ', h('input', { name: 'seed', size: 12 })), h('div', {}, deptBoxes),
  h('button', { type: 'submit' }, L('抽取', 'Draw')));
  const published = h('section', { class: 'card', id: 'draw-list' });
  async function record(draw, object, result) {
    const finding = prompt(L('检查结果说明', 'Finding')) || null;
    try { await api(`/api/v1/inspections/draws/${draw}/results`, { method: 'POST', body: { object_id: object, result, finding } }); await list(); }
    catch (err) { published.append(errorBox(err)); }
  }
  async function list() {
    const p = await api('/api/v1/inspections/public');
    published.replaceChildren(h('h2', {}, L('公开结果', 'Published draws and results')),
      ...p.items.map((d) => h('div', { 'data-draw': d.id },
        h('h3', {}, `#${d.id} ${d.item} (${d.population}) `, h('small', {}, fmtTime(d.drawn_at), ` seed=${d.seed}`)),
        table([L('对象', 'Object'), L('部门', 'Departments'), L('结果', 'Result'), ''],
          d.objects.map((o) => h('tr', {}, h('td', {}, o.id), h('td', {}, (o.departments || []).map(deptLabel).join(', ')),
            h('td', {}, o.result ? `${o.result}${o.finding ? ': ' + o.finding : ''}` : '—'),
            h('td', {}, h('button', { type: 'button', onclick: () => record(d.id, o.id, 'pass') }, L('合格', 'Pass')), ' ',
              h('button', { type: 'button', onclick: () => record(d.id, o.id, 'fail') }, L('不合格', 'Fail')))))))));
  }
  view.append(h('h1', {}, L('双随机一公开', 'Random inspections')), form, out, published);
  await list();
}
