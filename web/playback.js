// Track playback: every page of a track (following properties.next, up to
// a bound the browser can hold), drawn on a map, and a playhead moved along
// it by a time slider, a play button and a speed choice.

import { api } from './http.js';
import { h, fmtTime } from './dom.js';
import { L } from './labels.js';

const MAX_PAGES = 20; // 100,000 fixes at the server's default page

export async function loadTrack(path) {
  const fixes = [];
  let next = path;
  for (let i = 0; next && i < MAX_PAGES; i++) {
    const page = await api(next);
    fixes.push(...page.properties.fixes);
    next = page.properties.next;
  }
  return fixes;
}

// Fences a permit names (its sites and routes), as a FeatureCollection.
export async function permitFences(permitIds, fences) {
  const ids = new Set();
  for (const id of new Set(permitIds.filter(Boolean))) {
    try {
      const p = await api(`/api/v1/permits/${encodeURIComponent(id)}`);
      for (const f of [p.source_site, p.disposal_site, ...(p.routes || [])]) ids.add(f);
    } catch (e) { console.warn('permit', id, e); }
  }
  return { type: 'FeatureCollection', features: fences.features.filter((f) => ids.has(f.properties.id)) };
}

// The controls under a map: a slider over the fixes, play/pause, speed
// (fix time per second of playback). Returns the element and a stop function.
export function playback(map, fixes) {
  if (!fixes.length) return { el: h('p', { class: 'muted', id: 'playback' }, L('无轨迹数据', 'No fixes in this period')), stop: () => {} };
  const times = fixes.map((f) => Date.parse(f.ts));
  const head = map.marker({ lon: fixes[0].lon, lat: fixes[0].lat, cls: 'playhead', layer: 'alerts', title: 'playhead' });
  const slider = h('input', { type: 'range', min: 0, max: fixes.length - 1, value: 0, step: 1, name: 'position', class: 'play-slider' });
  const label = h('span', { class: 'play-time', id: 'play-time' });
  const speed = h('select', { name: 'speed' }, [1, 10, 60, 300].map((x) => h('option', { value: x, selected: x === 60 }, `${x}×`)));
  const button = h('button', { type: 'button', id: 'play' }, L('播放', 'Play'));
  const show = (i) => {
    const f = fixes[i];
    const [x, y] = map.p([f.lon, f.lat]);
    head.dataset.x = x; head.dataset.y = y;
    map.placeMarker(head);
    head.dataset.index = i;
    label.textContent = `${fmtTime(f.ts)} · ${f.speed_kmh} km/h`;
    slider.value = i;
  };
  let timer = null;
  let clock = times[0];
  const pause = () => { clearInterval(timer); timer = null; button.textContent = L('播放', 'Play'); };
  const play = () => {
    if (Number(slider.value) >= fixes.length - 1) slider.value = 0;
    clock = times[Number(slider.value)];
    button.textContent = L('暂停', 'Pause');
    timer = setInterval(() => {
      clock += 100 * Number(speed.value);
      let i = Number(slider.value);
      while (i < fixes.length - 1 && times[i + 1] <= clock) i++;
      show(i);
      if (i >= fixes.length - 1) pause();
    }, 100);
  };
  button.addEventListener('click', () => (timer ? pause() : play()));
  slider.addEventListener('input', () => { show(Number(slider.value)); clock = times[Number(slider.value)]; });
  show(0);
  const el = h('div', { class: 'playback', id: 'playback' }, button, ' ', slider, ' ', label, ' ', h('label', {}, L('速度', 'Speed'), ' ', speed),
    h('span', { class: 'muted' }, ` ${fixes.length} ${L('个定位点', 'fixes')}`));
  return { el, stop: pause };
}
