// The live fleet on a MapView, kept current from /api/v1/vehicles/stream:
// a snapshot first, then deltas (only the trucks that moved or changed
// state, at most one delta a second). Changes are queued by plate (a truck
// that moved twice is drawn once, at its newest place) and applied in the
// next animation frame, all of a delta at once: the browser then lays out
// and paints the map once per delta, not once per slice of it. Only a
// snapshot of a big fleet is spread over frames (creating markers costs
// more than moving them). A marker's tooltip is written when the pointer
// reaches it, not on every move.

import { fmtTime } from './dom.js';

// Markers created per animation frame while a snapshot is drawn.
const NEW_PER_FRAME = 500;
// Above this many trucks the plate labels are hidden (CSS), as on any map
// showing a whole city: thousands of overlapping labels are unreadable and
// the most costly part of drawing.
const LABELS_UP_TO = 300;

export class FleetLayer {
  // onChange(vehicles: Map plate -> vehicle) after a batch is drawn.
  constructor(map, { onChange = () => {} } = {}) {
    this.map = map;
    this.onChange = onChange;
    this.vehicles = new Map();
    this.markers = new Map();
    this.queue = new Map();
    this.scheduled = false;
    this.firstDrawn = null; // resolves once the first snapshot is on the map
    this.firstDone = new Promise((ok) => { this.firstDrawn = ok; });
    map.layers.points.addEventListener('mouseover', (e) => {
      const m = e.target.closest && e.target.closest('.marker.vehicle');
      const v = m && this.vehicles.get(m.dataset.plate);
      if (!v || !v.last_fix) return;
      const t = m.querySelector('title');
      if (t) t.textContent = tooltip(v);
    });
  }

  // The whole fleet: what is not in it any more is removed.
  snapshot({ items }) {
    const keep = new Set(items.map((v) => v.plate));
    for (const plate of this.vehicles.keys()) if (!keep.has(plate)) this.remove(plate);
    for (const v of items) this.queue.set(v.plate, v);
    this.snapshotPending = true;
    this.schedule();
  }

  delta({ items = [], removed = [] }) {
    // Counted on the map element, for tests and for anyone curious.
    this.map.svg.dataset.deltas = (this.deltaCount = (this.deltaCount || 0) + 1);
    for (const plate of removed) this.remove(plate);
    for (const v of items) this.queue.set(v.plate, v);
    this.schedule();
  }

  remove(plate) {
    this.queue.delete(plate);
    this.vehicles.delete(plate);
    const m = this.markers.get(plate);
    if (m) { m.remove(); this.markers.delete(plate); }
  }

  schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => this.flush());
  }

  flush() {
    this.scheduled = false;
    let created = 0;
    for (const [plate, v] of this.queue) {
      this.queue.delete(plate);
      if (this.apply(v) && ++created >= NEW_PER_FRAME) break;
    }
    const many = this.vehicles.size > LABELS_UP_TO;
    if (this.map.svg.classList.contains('many') !== many) {
      this.map.svg.classList.toggle('many', many);
      // Hidden labels are not kept in place while zooming: place them now.
      if (!many) for (const m of this.markers.values()) this.map.placeMarker(m);
    }
    if (this.queue.size) { this.schedule(); return; }
    if (this.snapshotPending) { this.snapshotPending = false; this.firstDrawn(); }
    this.onChange(this.vehicles);
  }

  // Draws one vehicle; true when its marker was created.
  apply(v) {
    this.vehicles.set(v.plate, v);
    const f = v.last_fix;
    let m = this.markers.get(v.plate);
    if (!f) { if (m) { m.remove(); this.markers.delete(v.plate); } return false; }
    if (!m) {
      m = this.map.dot({
        lon: f.lon, lat: f.lat, cls: `vehicle state-${v.state}`, label: v.plate, title: tooltip(v),
        attrs: { 'data-plate': v.plate, 'data-state': v.state },
      });
      this.markers.set(v.plate, m);
      return true;
    }
    this.map.move(m, f.lon, f.lat);
    if (m.dataset.state !== v.state) {
      m.setAttribute('class', `marker flat vehicle state-${v.state}`);
      m.dataset.state = v.state;
    }
    return false;
  }
}

function tooltip(v) {
  const f = v.last_fix;
  return `${v.plate} ${v.firm_id} ${fmtTime(f.ts)} ${f.speed_kmh} km/h (${v.state})`;
}
