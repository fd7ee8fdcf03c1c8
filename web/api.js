// Talking to muckwatch's own API with the signed-in token, plus the small
// helpers every page shares (labels, escaping, element building).

const TOKEN_KEY = 'muckwatch.token';

// sessionStorage, not localStorage: a token should not outlive the tab on a
// shared office machine.
export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set token(t) { t ? sessionStorage.setItem(TOKEN_KEY, t) : sessionStorage.removeItem(TOKEN_KEY); },
  role: null, // {role, department, firm_id} from /whoami
};

export class ApiError extends Error {
  constructor(status, body) {
    super(`${status}: ${(body && (body.detail || body.error)) || 'request failed'}`);
    this.status = status;
    this.body = body;
  }
}

export async function api(path, { method = 'GET', body } = {}) {
  const headers = { Authorization: `Bearer ${session.token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = { error: text }; }
  if (!r.ok) throw new ApiError(r.status, json);
  return json;
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

// EventSource cannot send an Authorization header, so the SSE stream is read
// with fetch() and parsed here. Reconnects with a growing pause until
// `signal` aborts; `onState` reports 'open' / 'closed' for the status badge.
export async function streamAlerts(onAlert, onState, signal) {
  let pause = 1000;
  while (!signal.aborted) {
    try {
      const r = await fetch('/api/v1/alerts/stream', {
        headers: { Authorization: `Bearer ${session.token}`, Accept: 'text/event-stream' },
        signal,
      });
      if (r.status === 401 || r.status === 403) { onState('forbidden'); return; }
      if (!r.ok) throw new Error(`stream: ${r.status}`);
      onState('open');
      pause = 1000;
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n/g, '\n');
        let end;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          let event = 'message';
          const data = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
          }
          if (event === 'alert' && data.length) {
            try { onAlert(JSON.parse(data.join('\n'))); } catch (e) { console.warn('bad alert', e); }
          }
        }
      }
    } catch (e) {
      if (signal.aborted) return;
      console.warn('alert stream', e);
    }
    onState('closed');
    await new Promise((ok) => setTimeout(ok, pause));
    pause = Math.min(pause * 2, 30000);
  }
}

// "中文 English" side by side: officers and foreign staff share screens.
export const L = (zh, en) => `${zh} ${en}`;

export const CODE_NAMES = {
  NO_PERMIT: '无证运输', OUT_OF_HOURS: '超时段运输', ROUTE_DEVIATION: '偏离路线', RESTRICTED_ZONE: '闯禁区',
  SPEEDING: '超速', ILLEGAL_DUMPING: '偷倒乱倒', WRONG_DISPOSAL_SITE: '未按指定消纳场', COVER_OPEN: '未密闭运输',
  OVERLOAD: '超载', TRACK_GAP: '轨迹异常',
};
export const DEPT_NAMES = { urban: '城管', police: '公安交警', housing: '住建', transport: '交通运输', ecology: '生态环境' };
export const STATUS_NAMES = { pending: '待处理', investigating: '调查中', decided: '已决定', closed: '已结案', open: '办理中', active: '有效', suspended: '暂停', revoked: '吊销' };
export const codeLabel = (c) => L(CODE_NAMES[c] || c, c);
export const deptLabel = (d) => L(DEPT_NAMES[d] || d, d);
export const statusLabel = (s) => L(STATUS_NAMES[s] || s, s);

// Builds DOM without innerHTML so that API text (names, findings) can never
// inject markup. attrs: on* keys become listeners; children may be strings.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
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

// Picked dates are city-local days; the API takes RFC 3339, so the city's
// offset (from /whoami) is spelled out.
const offset = () => (session.role && session.role.utc_offset) || '+08:00';
export const dayStart = (d) => (d ? `${d}T00:00:00${offset()}` : '');
export const dayEnd = (d) => (d ? `${d}T23:59:59.999${offset()}` : '');
