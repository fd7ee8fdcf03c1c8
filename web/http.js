// HTTP: muckwatch's own API with the signed-in token, and its alert stream.

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

// An Excel export of a list: the same path and filters as the table shows,
// fetched with the token (a plain link could not carry it) and saved.
export async function download(path, filename) {
  const r = await fetch(path, {
    headers: { Authorization: `Bearer ${session.token}`, Accept: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet' },
  });
  if (!r.ok) {
    let body = null;
    try { body = await r.json(); } catch { /* not JSON */ }
    throw new ApiError(r.status, body);
  }
  const url = URL.createObjectURL(await r.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

// EventSource cannot send an Authorization header, so SSE streams are read
// with fetch() and parsed here. Reconnects with a growing pause until
// `signal` aborts; `onState` reports 'open' / 'closed' / 'forbidden' for a
// status badge; `onEvent(event, data, id)` gets each event (data parsed as
// JSON). With `resume`, the id of the last event seen is sent back on a
// reconnect (Last-Event-ID).
export async function streamEvents(path, onEvent, onState, signal, { resume = false } = {}) {
  let pause = 1000;
  let lastId = null;
  while (!signal.aborted) {
    try {
      const headers = { Authorization: `Bearer ${session.token}`, Accept: 'text/event-stream' };
      if (resume && lastId) headers['Last-Event-ID'] = lastId;
      const r = await fetch(path, { headers, signal });
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
          let id = null;
          const data = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('id:')) id = line.slice(3).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
          }
          if (id) lastId = id;
          if (!data.length) continue;
          let parsed;
          try { parsed = JSON.parse(data.join('\n')); } catch { continue; }
          try { onEvent(event, parsed, id); } catch (e) { console.warn('stream event', event, e); }
        }
      }
    } catch (e) {
      if (signal.aborted) return;
      console.warn('stream', path, e);
    }
    onState('closed');
    await new Promise((ok) => setTimeout(ok, pause));
    pause = Math.min(pause * 2, 30000);
  }
}

// The alert stream: the server starts with the last 12 h of alerts; on a
// reconnect the id of the last alert seen keeps it from sending them again.
export function streamAlerts(onAlert, onState, signal) {
  return streamEvents('/api/v1/alerts/stream', (event, data) => { if (event === 'alert') onAlert(data); }, onState, signal, { resume: true });
}

// The live map's stream: `snapshot` (the fleet) then `delta`s.
export function streamFleet(onSnapshot, onDelta, onState, signal) {
  return streamEvents('/api/v1/vehicles/stream', (event, data) => {
    if (event === 'snapshot') onSnapshot(data);
    else if (event === 'delta') onDelta(data);
  }, onState, signal);
}
