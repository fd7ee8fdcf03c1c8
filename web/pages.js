// Live view, firm view and statistics. Each page function fills `view` and
// returns a cleanup function (timers, the alert stream).

import { api, download, query, session, streamAlerts, streamFleet } from './http.js';
import { exportButton, h, table, errorBox, fmtTime } from './dom.js';
import { L, codeLabel, deptLabel, statusLabel } from './labels.js';
import { MapView } from './map.js';
import { applicationSections } from './applications.js';
import { FleetLayer } from './fleet.js';

const STATE_LABELS = { ok: L('正常', 'OK'), violating: L('违规', 'Violating'), stale: L('离线', 'Silent'), no_fix: L('无定位', 'No fix') };

function fleetLegend() {
  return h('div', { class: 'legend fleet' }, Object.entries(STATE_LABELS).map(([k, v]) => h('span', { class: 'key' }, h('i', { class: `state-${k}` }), v)));
}

function drawFleet(map, vehicles) {
  map.clearPoints();
  for (const v of vehicles) {
    if (!v.last_fix) continue;
    map.marker({
      lon: v.last_fix.lon, lat: v.last_fix.lat, cls: `vehicle state-${v.state}`, label: v.plate,
      title: `${v.plate} ${v.firm_id} ${fmtTime(v.last_fix.ts)} ${v.last_fix.speed_kmh} km/h (${v.state})`,
      attrs: { 'data-plate': v.plate, 'data-state': v.state },
    });
  }
}

export async function livePage(view) {
  const dept = session.role.department;
  const feed = h('ol', { class: 'alerts', id: 'alert-feed' });
  const status = h('span', { class: 'badge', id: 'stream-state', 'data-state': 'connecting' }, L('连接中', 'Connecting'));
  const mapBox = h('div', { class: 'map-box' });
  const counts = h('p', { class: 'muted', id: 'fleet-count' });
  view.append(
    h('h1', {}, L('实时监控', 'Live view'), dept ? h('small', {}, ' — ', deptLabel(dept)) : null),
    h('div', { class: 'split' },
      h('section', { class: 'card grow' }, h('h2', {}, L('车队与电子围栏', 'Fleet and geofences')), mapBox, fleetLegend(), counts),
      h('section', { class: 'card side' },
        h('h2', {}, L('实时告警', 'Live alerts'), ' ', status),
        h('p', { class: 'muted' }, dept ? L('本部门的告警', 'Alerts routed to your department') : L('全部告警', 'All alerts')),
        feed)));
  const map = new MapView(mapBox);
  map.drawFences(await api('/api/v1/geofences'));
  map.fit();

  // The fleet comes as a stream: a snapshot, then only what changed.
  const fleet = new FleetLayer(map, {
    onChange: (vehicles) => {
      const by = {};
      for (const v of vehicles.values()) by[v.state] = (by[v.state] || 0) + 1;
      counts.textContent = `${L('车辆', 'Vehicles')}: ${vehicles.size} · ` + Object.entries(by).map(([k, n]) => `${STATE_LABELS[k]} ${n}`).join(' · ');
    },
  });
  const stop = new AbortController();
  streamFleet((snap) => fleet.snapshot(snap), (d) => fleet.delta(d), (st) => { counts.dataset.stream = st; }, stop.signal);
  // Fitted once more when the first snapshot is drawn: the fleet may
  // reach beyond the fences.
  fleet.firstDone.then(() => { if (!stop.signal.aborted) map.fit(); });

  streamAlerts((a) => {
    const item = h('li', { class: a.backlog ? 'alert backlog' : 'alert', 'data-code': a.code, 'data-case': a.case_id },
      h('div', {}, h('b', {}, codeLabel(a.code)), ' ', h('span', { class: 'plate' }, a.plate), ' ', h('time', {}, fmtTime(a.at))),
      h('div', { class: 'msg' }, a.message_zh), h('div', { class: 'msg en' }, a.message_en),
      h('a', { href: `#/case/${a.case_id}`, class: 'case-link' }, L('查看案件', 'Open case'), ` #${a.case_id}`));
    feed.prepend(item);
    // The truck itself turns red with the stream's next delta.
    map.marker({ lon: a.lon, lat: a.lat, cls: 'alert-point', layer: 'alerts', title: `${a.code} ${a.plate}` });
  }, (st) => {
    status.dataset.state = st;
    status.textContent = { open: L('已连接', 'Connected'), closed: L('重连中', 'Reconnecting'), forbidden: L('无权限', 'Not allowed') }[st] || st;
  }, stop.signal);
  return () => { stop.abort(); };
}

export async function firmPage(view) {
  const firm = session.role.firm_id;
  const plateSel = h('input', { name: 'plate', placeholder: L('车牌', 'Plate'), size: 10 });
  view.append(h('h1', {}, firm ? L('本企业', 'My firm') : L('企业与准运证', 'Firms and permits'), firm ? h('small', {}, ` — ${firm}`) : null));
  const [permits, vehicles, violations, fences] = await Promise.all([
    api('/api/v1/permits?limit=1000'), api('/api/v1/vehicles?limit=1000'), api('/api/v1/violations?limit=200'), api('/api/v1/geofences'),
  ]);
  const mapBox = h('div', { class: 'map-box' });
  view.append(h('section', { class: 'card' }, h('h2', {}, L('准运证路线与场地', 'Permitted sites and routes')), mapBox));
  // Only the fences its permits name: a firm's map is about its own work.
  const named = new Set(permits.items.flatMap((p) => [p.source_site, p.disposal_site, ...(p.routes || [])]));
  const map = new MapView(mapBox, { height: 380 });
  const mine = { type: 'FeatureCollection', features: fences.features.filter((f) => named.has(f.properties.id)) };
  map.drawFences(mine.features.length ? mine : fences);
  drawFleet(map, vehicles.items);
  map.fit();

  view.append(h('section', { class: 'card' }, h('h2', {}, L('准运证', 'Permits'), h('small', {}, ` (${permits.total})`), ' ',
    exportButton('export-permits', () => '/api/v1/permits', 'permits.xlsx', download)),
    table([L('编号', 'ID'), L('企业', 'Firm'), L('车辆', 'Vehicles'), L('出土工地', 'Source'), L('消纳场', 'Disposal'), L('路线', 'Routes'), L('时段', 'Windows'), L('有效期', 'Valid'), L('状态', 'Status')],
      permits.items.map((p) => h('tr', { 'data-permit': p.id },
        h('td', { class: 'permit-id' }, p.id), h('td', {}, p.firm_id), h('td', {}, (p.plates || []).join(', ')),
        h('td', {}, p.source_site), h('td', {}, p.disposal_site), h('td', {}, (p.routes || []).join(', ')),
        h('td', {}, (p.windows || []).map((w) => `${w.start}–${w.end}`).join(', ')),
        h('td', {}, `${p.valid_from} — ${p.valid_until}`), h('td', {}, statusLabel(p.status)))), { id: 'permits' })));

  view.append(h('section', { class: 'card' }, h('h2', {}, L('车辆', 'Vehicles'), h('small', {}, ` (${vehicles.total})`), ' ',
    exportButton('export-vehicles', () => '/api/v1/vehicles', 'vehicles.xlsx', download)),
    table([L('车牌', 'Plate'), L('终端', 'Device'), L('企业', 'Firm'), L('核定载重', 'Rated load'), L('最后定位', 'Last fix'), L('状态', 'State')],
      vehicles.items.map((v) => h('tr', { 'data-plate': v.plate },
        h('td', {}, h('a', { href: `#/track/${encodeURIComponent(v.plate)}`, class: 'track-link' }, v.plate)), h('td', {}, v.device_id), h('td', {}, v.firm_id), h('td', {}, `${v.rated_load_t} t`),
        h('td', {}, v.last_fix ? `${fmtTime(v.last_fix.ts)} · ${v.last_fix.speed_kmh} km/h` : '—'),
        h('td', {}, h('span', { class: `pill state-${v.state}` }, STATE_LABELS[v.state] || v.state)))), { id: 'vehicles' })));

  // A firm applies for its permits here (不见面审批) and follows them.
  if (firm) await applicationSections(view, { vehicles, fences });

  const vioBox = h('div');
  const showViolations = async (plate) => {
    try {
      const list = plate === undefined ? violations : await api(`/api/v1/violations${query({ plate, limit: 200 })}`);
      vioBox.replaceChildren(table([L('编号', 'ID'), L('违规', 'Code'), L('车牌', 'Plate'), L('开始', 'Started'), L('结束', 'Ended'), L('测量值', 'Measured'), L('案件', 'Case')],
        list.items.map((v) => h('tr', {},
          h('td', {}, v.id), h('td', {}, codeLabel(v.code)), h('td', {}, v.plate), h('td', {}, fmtTime(v.started_at)),
          h('td', {}, v.ended_at ? fmtTime(v.ended_at) : L('进行中', 'ongoing')), h('td', {}, Number(v.measured).toFixed(1)),
          h('td', {}, v.case_id ? h('a', { href: `#/case/${v.case_id}` }, `#${v.case_id}`) : '—'))), { id: 'violations' }),
        h('p', { class: 'muted' }, `${L('共', 'Total')} ${list.total}`));
    } catch (e) { vioBox.replaceChildren(errorBox(e)); }
  };
  view.append(h('section', { class: 'card' }, h('h2', {}, L('违规记录', 'Violations')),
    h('form', { class: 'filters', onsubmit: (e) => { e.preventDefault(); showViolations(plateSel.value.trim() || null); } },
      plateSel, ' ', h('button', {}, L('筛选', 'Filter')), ' ',
      exportButton('export-violations', () => `/api/v1/violations${query({ plate: plateSel.value.trim() })}`, 'violations.xlsx', download)), vioBox));
  showViolations();
  return null;
}

// Horizontal bars: no charting library, a chart is a few divs.
function bars(id, entries, label) {
  const max = Math.max(1, ...entries.map(([, n]) => n));
  return h('div', { class: 'bars', id },
    entries.length ? entries.map(([k, n]) => h('div', { class: 'bar-row' },
      h('span', { class: 'bar-label' }, label(k)),
      h('span', { class: 'bar' }, h('i', { style: `width:${(100 * n) / max}%` })),
      h('span', { class: 'bar-n' }, n))) : h('p', { class: 'muted' }, L('无数据', 'Nothing in this period')));
}

export async function statsPage(view) {
  const from = h('input', { type: 'date', name: 'from' });
  const to = h('input', { type: 'date', name: 'to' });
  const out = h('div');
  const load = async () => {
    try {
      const s = await api(`/api/v1/stats${query({ from: from.value, to: to.value })}`);
      const share = (n) => (s.cases ? ` (${Math.round((100 * n) / s.cases)}%)` : '');
      out.replaceChildren(
        h('div', { class: 'tiles' },
          h('div', { class: 'tile' }, h('b', {}, s.violations), L('违规', 'Violations')),
          h('div', { class: 'tile' }, h('b', {}, s.cases), L('案件', 'Cases')),
          h('div', { class: 'tile' }, h('b', {}, s.closed_cases), L('已结案', 'Closed')),
          h('div', { class: 'tile', id: 'multi' }, h('b', {}, s.multi_department_cases, share(s.multi_department_cases)), L('一案多查', 'Multi-department cases')),
          h('div', { class: 'tile', id: 'overload' }, h('b', {}, s.overload_cases, share(s.overload_cases)), L('一超四罚', 'Overload, four parties')),
          h('div', { class: 'tile' }, h('b', {}, `¥${Number(s.penalties_cny).toLocaleString()}`), L('罚款', 'Penalties'))),
        h('div', { class: 'split' },
          h('section', { class: 'card grow' }, h('h2', {}, L('按违规类型', 'By code')), bars('by-code', Object.entries(s.by_code), codeLabel)),
          h('section', { class: 'card grow' }, h('h2', {}, L('按部门', 'By department')), bars('by-dept', Object.entries(s.by_department), deptLabel)),
          h('section', { class: 'card grow' }, h('h2', {}, L('按期处置', 'Deadlines')),
            table([L('部门', 'Department'), L('核查', 'Checks'), L('按期处置率', 'On time'), L('逾期', 'Overdue')],
              Object.entries(s.deadlines || {}).map(([d, k]) => h('tr', { 'data-dept': d },
                h('td', {}, deptLabel(d)), h('td', {}, k.checks),
                h('td', { class: 'on-time-rate' }, k.on_time_rate === null ? '—' : `${Math.round(100 * k.on_time_rate)}%`),
                h('td', { class: k.overdue ? 'overdue-mark' : '' }, k.overdue))), { id: 'deadlines' })),
          h('section', { class: 'card grow' }, h('h2', {}, L('案件构成', 'Cases')), bars('case-kinds', [
            ['all', s.cases], ['multi', s.multi_department_cases], ['overload', s.overload_cases], ['closed', s.closed_cases]],
          (k) => ({ all: L('全部', 'All'), multi: L('一案多查', 'Multi-dept'), overload: L('一超四罚', 'Overload'), closed: L('已结案', 'Closed') })[k]))));
    } catch (e) { out.replaceChildren(errorBox(e)); }
  };
  view.append(h('h1', {}, L('统计', 'Statistics')),
    h('form', { class: 'filters card', onsubmit: (e) => { e.preventDefault(); load(); } },
      h('label', {}, L('从', 'From'), ' ', from), ' ', h('label', {}, L('到', 'To'), ' ', to), ' ', h('button', {}, L('查询', 'Show'))),
    out);
  await load();
  return null;
}
