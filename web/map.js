// A small SVG map that needs no tile server: it draws GeoJSON (fences,
// tracks, points) itself in Web Mercator "world pixels", which keeps an
// optional raster tile layer (configured by URL template) exactly aligned.
// Pan by dragging, zoom with the wheel.

import { h } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';
const TILE = 256;
const Z = 20; // world-pixel zoom the geometry is projected at

function project([lon, lat]) {
  const s = Math.sin((Math.max(-85, Math.min(85, lat)) * Math.PI) / 180);
  const world = TILE * 2 ** Z;
  return [((lon + 180) / 360) * world, (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * world];
}

// Metres per world pixel at a latitude, to draw circles of radius_m.
const metresPerPixel = (lat) => (156543.03392 * Math.cos((lat * Math.PI) / 180)) / 2 ** Z;

function s(tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, v);
  return el;
}

export const KIND_STYLE = {
  source_site: { fill: '#f3c77a', stroke: '#b77a0a', label: '出土工地 Source site' },
  disposal_site: { fill: '#9ed59a', stroke: '#2d7a28', label: '消纳场 Disposal site' },
  route: { fill: 'none', stroke: '#3f7fd0', label: '核准路线 Route' },
  restricted_zone: { fill: '#f2a0a0', stroke: '#b02020', label: '禁区 Restricted zone' },
  speed_zone: { fill: '#c8b6f0', stroke: '#6a4bb8', label: '限速区 Speed zone' },
};

export class MapView {
  // options.tiles: e.g. "https://tile.example/{z}/{x}/{y}.png" (optional).
  constructor(container, { height = 460, tiles = localStorage.getItem('muckwatch.tiles') || '' } = {}) {
    this.tiles = tiles;
    this.svg = s('svg', { class: 'map', role: 'img', 'aria-label': 'map', height });
    this.layers = {};
    for (const name of ['tiles', 'fences', 'tracks', 'points', 'alerts']) this.svg.append((this.layers[name] = s('g', { class: `layer-${name}` })));
    this.bounds = null;
    this.legend = h('div', { class: 'legend' });
    // Fitting is only automatic on first draw: live updates must not yank
    // the view away from where the officer is looking.
    const fitAll = h('button', { type: 'button', class: 'map-fit', title: 'fit', onclick: () => this.fit() }, '全览 Fit all');
    container.append(h('div', { class: 'map-wrap' }, this.svg, fitAll, this.legend));
    this.installPanZoom();
  }

  // Coordinates relative to the first point drawn: world pixels at zoom 20
  // are ~1e8, and Chromium composes SVG transforms in float32, which puts
  // markers kilometres off if they are used as they are.
  p(c) {
    const [x, y] = project(c);
    if (!this.origin) this.origin = [Math.round(x), Math.round(y)];
    return [x - this.origin[0], y - this.origin[1]];
  }

  extend([x, y]) {
    const b = this.bounds || (this.bounds = [x, y, x, y]);
    b[0] = Math.min(b[0], x); b[1] = Math.min(b[1], y); b[2] = Math.max(b[2], x); b[3] = Math.max(b[3], y);
  }

  // Fits the view to everything drawn so far (or to `only`, a list of [lon,lat]).
  fit(only) {
    let b = this.bounds;
    if (only && only.length) {
      const ps = only.map((c) => this.p(c));
      b = [Math.min(...ps.map((p) => p[0])), Math.min(...ps.map((p) => p[1])), Math.max(...ps.map((p) => p[0])), Math.max(...ps.map((p) => p[1]))];
    }
    if (!b) return;
    const pad = Math.max(b[2] - b[0], b[3] - b[1]) * 0.08 + 200;
    this.setView(b[0] - pad, b[1] - pad, b[2] - b[0] + 2 * pad, b[3] - b[1] + 2 * pad);
  }

  setView(x, y, w, hgt) {
    // Keep the aspect ratio of the element so that circles stay round.
    const r = this.svg.getBoundingClientRect();
    const aspect = r.width && r.height ? r.width / r.height : 2;
    if (w / hgt < aspect) { const nw = hgt * aspect; x -= (nw - w) / 2; w = nw; } else { const nh = w / aspect; y -= (nh - hgt) / 2; hgt = nh; }
    this.view = [x, y, w, hgt];
    this.svg.setAttribute('viewBox', `${x} ${y} ${w} ${hgt}`);
    // Markers are drawn in screen pixels whatever the zoom (lines use
    // non-scaling strokes in CSS).
    // Markers sit at world coordinates: a pan moves none of them, a zoom
    // only rescales them. Flat markers (thousands of vehicles) rescale
    // through one CSS variable, their labels (few) and the other markers
    // one by one.
    const px = w / (r.width || 800);
    if (px !== this.px) {
      this.px = px;
      this.svg.style.setProperty('--k', px);
      const labels = !this.svg.classList.contains('many');
      for (const m of [...this.layers.points.children, ...this.layers.alerts.children]) {
        if (!m.classList.contains('flat') || labels) this.placeMarker(m);
      }
    }
    this.drawTiles();
  }

  // setView at the next animation frame, the last asked for winning: a
  // burst of pointer or wheel events moves thousands of markers once.
  setViewSoon(...v) {
    const first = !this.pending;
    this.pending = v;
    if (first) requestAnimationFrame(() => { const p = this.pending; this.pending = null; this.setView(...p); });
  }

  installPanZoom() {
    let drag = null;
    this.svg.addEventListener('pointerdown', (e) => {
      if (!this.view) return;
      e.preventDefault(); // a drag pans; it must not select the labels' text
      drag = { x: e.clientX, y: e.clientY, view: [...this.view] };
      this.svg.setPointerCapture(e.pointerId);
    });
    this.svg.addEventListener('pointermove', (e) => {
      if (!drag) return;
      const k = drag.view[2] / this.svg.getBoundingClientRect().width;
      this.setViewSoon(drag.view[0] - (e.clientX - drag.x) * k, drag.view[1] - (e.clientY - drag.y) * k, drag.view[2], drag.view[3]);
    });
    this.svg.addEventListener('pointerup', () => { drag = null; });
    this.svg.addEventListener('wheel', (e) => {
      if (!this.view) return;
      e.preventDefault();
      const r = this.svg.getBoundingClientRect();
      const f = e.deltaY > 0 ? 1.25 : 0.8;
      const [x, y, w, hh] = this.pending || this.view;
      const cx = x + ((e.clientX - r.left) / r.width) * w;
      const cy = y + ((e.clientY - r.top) / r.height) * hh;
      this.setViewSoon(cx - (cx - x) * f, cy - (cy - y) * f, w * f, hh * f);
    }, { passive: false });
  }

  drawTiles() {
    const g = this.layers.tiles;
    g.replaceChildren();
    if (!this.tiles || !this.view) return;
    const [ox, oy] = this.origin || [0, 0];
    const [x, y] = [this.view[0] + ox, this.view[1] + oy];
    const [w, hh] = [this.view[2], this.view[3]];
    const width = this.svg.getBoundingClientRect().width || 800;
    const z = Math.max(0, Math.min(19, Math.round(Z - Math.log2(w / width))));
    const size = TILE * 2 ** (Z - z);
    for (let tx = Math.floor(x / size); tx * size < x + w; tx++) {
      for (let ty = Math.floor(y / size); ty * size < y + hh; ty++) {
        const href = this.tiles.replace('{z}', z).replace('{x}', tx).replace('{y}', ty);
        g.append(s('image', { href, x: tx * size - ox, y: ty * size - oy, width: size, height: size }));
      }
    }
  }

  path(coords, close) {
    return coords.map((c, i) => { const [x, y] = this.p(c); this.extend([x, y]); return `${i ? 'L' : 'M'}${x.toFixed(1)} ${y.toFixed(1)}`; }).join('') + (close ? 'Z' : '');
  }

  // Draws a GeoJSON Feature or FeatureCollection of fences, styled by kind.
  drawFences(geojson, { highlight = [] } = {}) {
    const features = geojson.type === 'FeatureCollection' ? geojson.features : [geojson];
    const kinds = new Set();
    for (const f of features) {
      const p = f.properties || {};
      const st = KIND_STYLE[p.kind] || { fill: '#ccc', stroke: '#666' };
      kinds.add(p.kind);
      const el = this.geometry(f.geometry, p, st);
      if (!el) continue;
      el.setAttribute('class', `fence kind-${p.kind}${highlight.includes(p.id) ? ' highlight' : ''}`);
      el.setAttribute('data-fence', p.id);
      el.append(s('title'));
      el.lastChild.textContent = `${p.id}: ${p.name || ''}`;
      this.layers.fences.append(el);
    }
    this.legend.replaceChildren(...[...kinds].filter((k) => KIND_STYLE[k]).map((k) =>
      h('span', { class: 'key' }, h('i', { style: `background:${KIND_STYLE[k].fill === 'none' ? KIND_STYLE[k].stroke : KIND_STYLE[k].fill}` }), KIND_STYLE[k].label)));
  }

  geometry(g, p, st) {
    if (!g) return null;
    const polys = g.type === 'Polygon' ? [g.coordinates] : g.type === 'MultiPolygon' ? g.coordinates : null;
    if (polys) {
      // evenodd so that holes stay holes.
      const d = polys.map((rings) => rings.map((r) => this.path(r, true)).join('')).join('');
      return s('path', { d, fill: st.fill, 'fill-opacity': 0.35, stroke: st.stroke, 'fill-rule': 'evenodd' });
    }
    const lines = g.type === 'LineString' ? [g.coordinates] : g.type === 'MultiLineString' ? g.coordinates : null;
    if (lines) {
      const d = lines.map((l) => this.path(l, false)).join('');
      // The corridor's width is drawn to scale under the centre line.
      const lat = lines[0][0][1];
      const width = (2 * (p.half_width_m || 50)) / metresPerPixel(lat);
      const grp = s('g');
      grp.append(s('path', { d, fill: 'none', stroke: st.stroke, 'stroke-opacity': 0.18, 'stroke-width': width, 'stroke-linejoin': 'round' }));
      grp.append(s('path', { d, fill: 'none', stroke: st.stroke, class: 'line' }));
      return grp;
    }
    if (g.type === 'Point') {
      const [x, y] = this.p(g.coordinates);
      const r = (p.radius_m || 30) / metresPerPixel(g.coordinates[1]);
      this.extend([x - r, y - r]); this.extend([x + r, y + r]);
      return s('circle', { cx: x, cy: y, r, fill: st.fill, 'fill-opacity': 0.35, stroke: st.stroke });
    }
    return null;
  }

  // A polyline of [lon, lat] (a vehicle's track).
  drawTrack(coords, { cls = 'track', title } = {}) {
    if (!coords.length) return;
    const el = s('path', { d: this.path(coords, false), class: cls, fill: 'none' });
    if (title) { el.append(s('title')); el.lastChild.textContent = title; }
    this.layers.tracks.append(el);
  }

  // A marker: { lon, lat, cls, label, title, onclick }.
  // layer 'alerts' survives clearPoints() (the fleet is redrawn every refresh).
  marker({ lon, lat, cls = '', label, title, onclick, attrs = {}, layer = 'points' }) {
    const [x, y] = this.p([lon, lat]);
    this.extend([x, y]);
    const g = s('g', { class: `marker ${cls}`, ...attrs });
    g.dataset.x = x; g.dataset.y = y;
    this.placeMarker(g);
    g.append(s('circle', { r: 6, class: 'dot' }));
    if (label) { const t = s('text', { class: 'mlabel', x: 9, y: 4 }); t.textContent = label; g.append(t); }
    if (title) { g.append(s('title')); g.lastChild.textContent = title; }
    if (onclick) g.addEventListener('click', onclick);
    this.layers[layer].append(g);
    return g;
  }

  // Moves a marker drawn by marker() to a new place.
  move(g, lon, lat) {
    const [x, y] = this.p([lon, lat]);
    this.extend([x, y]);
    g.dataset.x = x; g.dataset.y = y;
    this.placeMarker(g);
  }

  // A marker drawn without a transform of its own (a vehicle of the live
  // map): its circle and label are placed by their own coordinates, scaled
  // to stay the same size on screen. Thousands of them stay cheap to paint
  // and to composite; a transform per marker makes every frame's paint and
  // layerization cost grow with the fleet.
  dot({ lon, lat, cls = '', label, title, attrs = {}, layer = 'points' }) {
    const [x, y] = this.p([lon, lat]);
    this.extend([x, y]);
    const g = s('g', { class: `marker flat ${cls}`, ...attrs });
    g.dataset.x = x; g.dataset.y = y;
    g.append(s('circle', { class: 'dot' }));
    if (label) { const t = s('text', { class: 'mlabel' }); t.textContent = label; g.append(t); }
    if (title) { g.append(s('title')); g.lastChild.textContent = title; }
    this.placeMarker(g);
    this.layers[layer].append(g);
    return g;
  }

  placeMarker(g) {
    const k = this.px || 1;
    if (g.classList.contains('flat')) {
      // Radius, label size and halo come from the map's --k (app.css).
      const { x, y } = g.dataset;
      const c = g.firstChild;
      c.setAttribute('cx', x); c.setAttribute('cy', y);
      const t = c.nextSibling;
      if (t && t.tagName === 'text') { t.setAttribute('x', +x + 9 * k); t.setAttribute('y', +y + 4 * k); }
      return;
    }
    g.setAttribute('transform', `translate(${g.dataset.x} ${g.dataset.y}) scale(${k})`);
  }

  clearPoints() { this.layers.points.replaceChildren(); }
}
