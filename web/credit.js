// Firm credit (信用评价) and random inspections (双随机一公开). A firm sees
// its own ledger; departments and admin see every firm by grade (and export
// it), draw inspections, record their results, and see the inspector pool;
// admin adds inspectors.

import { api, download, query, session } from './http.js';
import { exportButton, h, table, errorBox, fmtTime } from './dom.js';
import { L, codeLabel, deptLabel, departments, statusLabel, populations, populationLabel, resultLabel } from './labels.js';

const gradeBadge = (g) => h('span', { class: `badge grade grade-${g}`, 'data-grade': g }, g);
const yesNo = (b) => (b ? L('是', 'yes') : L('否', 'no'));

async function ledger(view, firm, cycle) {
  const c = await api(`/api/v1/firms/${encodeURIComponent(firm)}/credit${query({ cycle })}`);
  view.append(
    h('section', { class: 'card', id: 'credit-ledger', 'data-firm': c.firm_id },
      h('h2', {}, L('信用档案', 'Credit ledger'), ` — ${c.firm_id} (${c.cycle})`),
      h('p', {}, L('得分', 'Score'), `: `, h('b', { id: 'credit-score' }, `${c.score} / ${c.base}`), ' ', gradeBadge(c.grade),
        c.blacklisted ? h('span', { class: 'error' }, ' ', L('已列入黑名单：不予新办准运证', 'Blacklisted: no new permits')) : null),
      table([L('违规', 'Violation'), L('类型', 'Code'), L('违规时间', 'Violation time'), L('扣分', 'Points'), L('案件', 'Case'), L('决定时间', 'Decided')],
        c.deductions.map((d) => h('tr', {}, h('td', {}, `#${d.violation_id}`), h('td', {}, codeLabel(d.code)),
          h('td', {}, fmtTime(d.violation_started_at)), h('td', {}, `-${d.points}`),
          h('td', {}, h('a', { href: `#/case/${d.case_id}` }, `#${d.case_id}`)), h('td', {}, fmtTime(d.at)))), { id: 'credit-deductions' }),
      h('h3', {}, L('现有准运证', 'Existing permits')),
      table([L('准运证', 'Permit'), L('状态', 'Status'), L('有效期', 'Valid')],
        c.permits.map((p) => h('tr', {}, h('td', {}, p.id), h('td', {}, statusLabel(p.status)), h('td', {}, `${p.valid_from} – ${p.valid_until}`))))));
}

export async function creditPage(view, firmArg) {
  const own = session.role.firm_id;
  view.append(h('h1', {}, L('企业信用评价', 'Firm credit rating')));
  if (own) return ledger(view, own);
  const params = () => ({ cycle: form.elements.cycle.value.trim(), grade: form.elements.grade.value });
  const box = h('div', {});
  const form = h('form', { class: 'filters', id: 'credit-filters', onsubmit: (e) => { e.preventDefault(); load(); } },
    h('label', {}, L('评价周期', 'Cycle'), ' ', h('input', { name: 'cycle', size: 8 })), ' ',
    h('label', {}, L('等级', 'Grade'), ' ', h('select', { name: 'grade' }, h('option', { value: '' }, L('全部', 'All')),
      ['A', 'B', 'C', 'D'].map((g) => h('option', { value: g }, g)))), ' ',
    h('button', { type: 'submit' }, L('查询', 'Show')), ' ',
    exportButton('export-credit', () => `/api/v1/credit${query(params())}`, 'credit.xlsx', download));
  const ledgerBox = h('div', {});
  async function load() {
    box.replaceChildren();
    ledgerBox.replaceChildren();
    if (firmArg) ledger(ledgerBox, firmArg, params().cycle).catch((err) => ledgerBox.append(errorBox(err)));
    let all;
    try { all = await api(`/api/v1/credit${query({ ...params(), limit: 1000 })}`); } catch (err) { box.append(errorBox(err)); return; }
    form.elements.cycle.placeholder = all.cycle;
    const order = (a, b) => a.grade.localeCompare(b.grade) || a.score - b.score;
    box.append(h('section', { class: 'card' },
      h('h2', {}, L('各等级企业', 'Firms by grade'), ` (${all.cycle})`),
      h('p', { id: 'grade-counts' }, ['A', 'B', 'C', 'D'].map((g) => h('span', {}, gradeBadge(g), ` ${(all.grades || {})[g] || 0} `))),
      all.total > all.items.length ? h('p', {}, L('仅显示前', 'Showing the first'), ` ${all.items.length} / ${all.total}`) : null,
      table([L('企业', 'Firm'), L('名称', 'Name'), L('得分', 'Score'), L('等级', 'Grade'), L('扣分记录', 'Deductions'), L('黑名单', 'Blacklisted')],
        [...all.items].sort(order).map((f) => h('tr', { 'data-firm': f.firm_id },
          h('td', {}, h('a', { href: `#/credit/${encodeURIComponent(f.firm_id)}` }, f.firm_id)), h('td', {}, f.name),
          h('td', {}, f.score), h('td', {}, gradeBadge(f.grade)), h('td', {}, f.deductions), h('td', {}, yesNo(f.blacklisted)))), { id: 'credit-firms' })));
  }
  view.append(form, box, ledgerBox);
  await load();
}

// The inspector pool, with each certificate's validity; admin adds to it.
async function inspectorsCard() {
  const card = h('section', { class: 'card', id: 'inspector-list' });
  async function renew(id) {
    const until = prompt(L('执法证有效期至 (YYYY-MM-DD)', 'Certificate valid until (YYYY-MM-DD)'));
    if (!until) return;
    try { await api(`/api/v1/inspectors/${encodeURIComponent(id)}`, { method: 'PATCH', body: { cert_valid_until: until.trim() } }); await load(); }
    catch (err) { card.append(errorBox(err)); }
  }
  async function load() {
    let pool;
    try { pool = await api('/api/v1/inspectors?limit=1000'); } catch (err) { card.replaceChildren(errorBox(err)); return; }
    const admin = session.role.role === 'admin';
    const form = admin ? h('form', { id: 'inspector-form', onsubmit: async (e) => {
      e.preventDefault();
      const f = new FormData(form);
      try {
        await api('/api/v1/inspectors', { method: 'POST', body: { id: f.get('id'), name: f.get('name'), department: f.get('department'), cert_valid_until: f.get('until') } });
        await load();
      } catch (err) { form.append(errorBox(err)); }
    } },
    h('label', {}, L('编号', 'Id'), ' ', h('input', { name: 'id', required: true, size: 10 })), ' ',
    h('label', {}, L('姓名', 'Name'), ' ', h('input', { name: 'name', required: true, size: 10 })), ' ',
    h('label', {}, L('部门', 'Department'), ' ', h('select', { name: 'department' }, departments().map((d) => h('option', { value: d }, deptLabel(d))))), ' ',
    h('label', {}, L('执法证有效期至', 'Certificate valid until'), ' ', h('input', { name: 'until', type: 'date', required: true })), ' ',
    h('button', { type: 'submit' }, L('添加', 'Add'))) : null;
    card.replaceChildren(h('h2', {}, L('执法检查人员名录', 'Inspector pool'), ` (${pool.total}) `,
      exportButton('export-inspectors', () => '/api/v1/inspectors', 'inspectors.xlsx', download)),
    table([L('编号', 'Id'), L('姓名', 'Name'), L('部门', 'Department'), L('执法证有效期至', 'Certificate valid until'), L('执法证', 'Certificate'), ''],
      pool.items.map((i) => h('tr', { 'data-inspector': i.id }, h('td', {}, i.id), h('td', {}, i.name), h('td', {}, deptLabel(i.department)),
        h('td', {}, i.cert_valid_until), h('td', { class: i.cert_valid ? '' : 'error' }, i.cert_valid ? L('有效', 'valid') : L('已过期', 'expired')),
        h('td', {}, admin ? h('button', { type: 'button', class: 'renew', onclick: () => renew(i.id) }, L('续期', 'Renew')) : null)))));
    if (form) card.append(form);
  }
  await load();
  return card;
}

const who = (inspectors) => (inspectors || []).map((i) => `${i.name || i.id} (${deptLabel(i.department)})`).join(', ');

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
          h('td', {}, o.inspectors.map((i) => `${i.id} (${deptLabel(i.department)})`).join(', '))))));
      await list();
    } catch (err) { out.append(errorBox(err)); }
  } },
  h('h2', {}, L('双随机抽查', 'Random inspection draw')),
  h('label', {}, L('检查事项', 'Item'), ' ', h('input', { name: 'item', required: true, size: 24 })), ' ',
  h('label', {}, L('对象', 'Population'), ' ', h('select', { name: 'population' },
    populations().map((p) => h('option', { value: p }, populationLabel(p))))), ' ',
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
  // The officials' list (who inspects each object); what the public sees
  // is the same without names, exported beside it.
  async function list() {
    const p = await api('/api/v1/inspections/draws?limit=50');
    published.replaceChildren(h('h2', {}, L('抽查记录与结果', 'Draws and results'), ' ',
      exportButton('export-draws', () => '/api/v1/inspections/draws', 'inspection-draws.xlsx', download,
        L('导出 Excel（含检查人员）', 'Export to Excel (with inspectors)')), ' ',
      exportButton('export-public', () => '/api/v1/inspections/public', 'inspections-public.xlsx', download,
        L('导出公开 Excel', 'Export the published list'))),
    h('p', {}, L('公开页面（无需登录，不含检查人员姓名）', 'Published without sign-in and without inspectors\' names'), ': ',
      h('code', {}, '/api/v1/inspections/public')),
    ...p.items.map((d) => h('div', { 'data-draw': d.id },
      h('h3', {}, `#${d.id} ${d.item} (${populationLabel(d.population)}) `, h('small', {}, fmtTime(d.drawn_at), ` seed=${d.seed}`)),
      table([L('对象', 'Object'), L('检查人员', 'Inspectors'), L('结果', 'Result'), ''],
        d.objects.map((o) => h('tr', {}, h('td', {}, o.id), h('td', {}, who(o.inspectors)),
          h('td', {}, o.result ? `${resultLabel(o.result)}${o.finding ? ': ' + o.finding : ''}` : '—'),
          h('td', {}, h('button', { type: 'button', onclick: () => record(d.id, o.id, 'pass') }, L('合格', 'Pass')), ' ',
            h('button', { type: 'button', onclick: () => record(d.id, o.id, 'fail') }, L('不合格', 'Fail')))))))));
  }
  view.append(h('h1', {}, L('双随机一公开', 'Random inspections')), form, out, published, await inspectorsCard());
  await list();
}
