#!/usr/bin/env python3
"""Generates the sample city in geofences/*.geojson (deterministic, standard library only).

A synthetic road grid around Yancheng (33.30-33.50 N, 120.00-120.30 E): 7 east-west and
7 north-south gently curving roads, an inner ring (60 km/h), an always-on old-town
restricted zone that closes the four road sections around the centre, two schools
(restricted during school hours, 30 km/h in front), a hospital (quiet hours at night,
a circle), a water-source protection area, 20 source sites, 5 disposal sites and 30
routes. Every route starts at the centre of its source site, takes an access road to the
nearest road, follows the grid by shortest path over the road sections that keep clear
of every restricted zone, and ends at the centre of its disposal site.

Run from the repository root:  python3 geofences/tools/gen_sample_city.py
The script checks its own output (routes inside their sites at both ends, no route
corridor within reach of a restricted zone) and fails loudly otherwise.
"""
import heapq
import json
import math
import os
import random

LAT0, LON0 = 33.40, 120.15
M_PER_DEG_LAT = 110_911.6   # at 33.4 N
M_PER_DEG_LON = 93_030.0    # at 33.4 N
ROUTE_CLEARANCE_M = 110.0   # road sections closer than this to a restricted zone are closed

rng = random.Random(20240601)


def to_lonlat(x, y):
    return [round(LON0 + x / M_PER_DEG_LON, 6), round(LAT0 + y / M_PER_DEG_LAT, 6)]


# ---------------------------------------------------------------- plane geometry helpers
def seg_point_dist(a, b, p):
    dx, dy = b[0] - a[0], b[1] - a[1]
    l2 = dx * dx + dy * dy
    t = 0.0 if l2 == 0 else max(0.0, min(1.0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / l2))
    return math.hypot(p[0] - a[0] - t * dx, p[1] - a[1] - t * dy)


def orient(a, b, c):
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def segs_cross(a, b, c, d):
    return (orient(a, b, c) * orient(a, b, d) < 0) and (orient(c, d, a) * orient(c, d, b) < 0)


def seg_seg_dist(a, b, c, d):
    if segs_cross(a, b, c, d):
        return 0.0
    return min(seg_point_dist(a, b, c), seg_point_dist(a, b, d), seg_point_dist(c, d, a), seg_point_dist(c, d, b))


def point_in_ring(p, ring):
    inside = False
    n = len(ring)
    for i in range(n):
        a, b = ring[i], ring[(i + 1) % n]
        if (a[1] > p[1]) != (b[1] > p[1]):
            x = a[0] + (p[1] - a[1]) * (b[0] - a[0]) / (b[1] - a[1])
            if x > p[0]:
                inside = not inside
    return inside


def ring_edges(ring):
    return [(ring[i], ring[(i + 1) % len(ring)]) for i in range(len(ring))]


class Zone:
    """A restricted or speed zone in plane metres: polygon rings, or a circle."""

    def __init__(self, rings=None, circle=None):
        self.rings, self.circle = rings, circle

    def dist_to_polyline(self, line):
        if self.circle:
            c, r = self.circle
            return max(0.0, min(seg_point_dist(line[i], line[i + 1], c) for i in range(len(line) - 1)) - r)
        if any(point_in_ring(p, self.rings[0]) and not any(point_in_ring(p, h) for h in self.rings[1:]) for p in line):
            return 0.0
        best = float("inf")
        for ring in self.rings:
            for a, b in ring_edges(ring):
                for i in range(len(line) - 1):
                    best = min(best, seg_seg_dist(a, b, line[i], line[i + 1]))
        return best

    def geometry(self):
        if self.circle:
            return {"type": "Point", "coordinates": to_lonlat(*self.circle[0])}
        return {"type": "Polygon", "coordinates": [close([to_lonlat(*p) for p in ring]) for ring in self.rings]}


def close(ring):
    return ring + [ring[0]]


def blob(cx, cy, r, n=7, jitter=0.25, rot=None):
    """An irregular convex-ish polygon (counter-clockwise) around (cx, cy)."""
    rot = rng.uniform(0, 2 * math.pi) if rot is None else rot
    pts = []
    for k in range(n):
        t = rot + 2 * math.pi * k / n
        rr = r * (1 + rng.uniform(-jitter, jitter))
        pts.append((cx + rr * math.cos(t), cy + rr * math.sin(t)))
    return pts


# ---------------------------------------------------------------- road grid
EW_NAMES = ["Yingbin Rd (迎宾路)", "Shiji Ave (世纪大道)", "Renmin Rd (人民路)", "Jiefang Rd (解放路)",
            "Jianjun Rd (建军路)", "Qingnian Rd (青年路)", "Xiwang Ave (希望大道)"]
NS_NAMES = ["Kaichuang Rd (开创路)", "Kaifang Ave (开放大道)", "Wenhua Rd (文化路)", "Yulong Rd (毓龙路)",
            "Dongjin Rd (东进路)", "Taishan Rd (泰山路)", "Huanghai Rd (黄海路)"]
XS = [-12000, -8000, -4000, 0, 4000, 8000, 12000]
YS = [-9000, -6000, -3000, 0, 3000, 6000, 9000]
EW = [(y, rng.uniform(60, 180), rng.uniform(7000, 14000), rng.uniform(0, 2 * math.pi)) for y in YS]
NS = [(x, rng.uniform(60, 180), rng.uniform(7000, 14000), rng.uniform(0, 2 * math.pi)) for x in XS]


def ew_y(j, x):
    y0, a, p, ph = EW[j]
    return y0 + a * math.sin(2 * math.pi * x / p + ph)


def ns_x(i, y):
    x0, a, p, ph = NS[i]
    return x0 + a * math.sin(2 * math.pi * y / p + ph)


def intersection(i, j):
    x, y = XS[i], YS[j]
    for _ in range(100):
        x, y = ns_x(i, y), ew_y(j, x)
    return (x, y)


NODES = {(i, j): intersection(i, j) for i in range(7) for j in range(7)}


def road_polyline(a, b):
    """Polyline along the road joining neighbouring intersections a and b."""
    (i1, j1), (i2, j2) = a, b
    pa, pb = NODES[a], NODES[b]
    if j1 == j2:  # east-west road j1
        n = max(2, int(abs(pb[0] - pa[0]) / 200))
        pts = [pa] + [(pa[0] + (pb[0] - pa[0]) * k / n, ew_y(j1, pa[0] + (pb[0] - pa[0]) * k / n)) for k in range(1, n)] + [pb]
    else:  # north-south road i1
        n = max(2, int(abs(pb[1] - pa[1]) / 200))
        pts = [pa] + [(ns_x(i1, pa[1] + (pb[1] - pa[1]) * k / n), pa[1] + (pb[1] - pa[1]) * k / n) for k in range(1, n)] + [pb]
    return pts


def road_name(a, b):
    return EW_NAMES[a[1]] if a[1] == b[1] else NS_NAMES[a[0]]


EDGES = {}
for i in range(7):
    for j in range(7):
        if i < 6:
            EDGES[((i, j), (i + 1, j))] = road_polyline((i, j), (i + 1, j))
        if j < 6:
            EDGES[((i, j), (i, j + 1))] = road_polyline((i, j), (i, j + 1))


def length(line):
    return sum(math.dist(line[k], line[k + 1]) for k in range(len(line) - 1))


def offset_polyline(line, d):
    """Offsets a polyline (closed if first == last) to its left by d metres (miter joins)."""
    closed = line[0] == line[-1]
    pts = line[:-1] if closed else line
    n = len(pts)
    out = []
    for k in range(n):
        prev = pts[k - 1] if (closed or k > 0) else None
        nxt = pts[(k + 1) % n] if (closed or k < n - 1) else None
        normals = []
        for a, b in ((prev, pts[k]), (pts[k], nxt)):
            if a is None or b is None:
                continue
            dx, dy = b[0] - a[0], b[1] - a[1]
            l = math.hypot(dx, dy)
            normals.append((-dy / l, dx / l))
        nx = sum(v[0] for v in normals) / len(normals)
        ny = sum(v[1] for v in normals) / len(normals)
        l = math.hypot(nx, ny)
        cos_half = l  # |average of two unit normals| = cos(turn/2)
        out.append((pts[k][0] + d * nx / l / cos_half, pts[k][1] + d * ny / l / cos_half))
    return out


# ---------------------------------------------------------------- zones
restricted, speed = [], []

centre = NODES[(3, 3)]
old_town = Zone(rings=[blob(centre[0] + 100, centre[1] - 50, 800, n=10, jitter=0.12)])
restricted.append(("rz-01", "Old town historic core (老城区), closed to muck trucks", old_town, None))
speed.append(("sz-04", "City centre 30 km/h", Zone(rings=[blob(centre[0], centre[1], 1500, n=12, jitter=0.05)]), 30))

SCHOOL_HOURS = [{"days": "Mon-Fri", "start": "07:00", "end": "08:30"},
                {"days": "Mon-Fri", "start": "16:30", "end": "18:00"}]

# School A: north side of Jianjun Rd (j=4, y~3000), between Kaifang Ave and Wenhua Rd, x ~ -6000
xs = [-6150 + 10 * k for k in range(31)]
road_top = max(ew_y(4, x) for x in xs)
school_a = Zone(rings=[[(-6150, road_top + 140), (-5850, road_top + 140), (-5850, road_top + 320), (-6150, road_top + 320)]])
restricted.append(("rz-02", "Jianjun Rd Experimental Primary School (建军路实验小学), school hours", school_a, SCHOOL_HOURS))
xs = [-6400 + 10 * k for k in range(81)]
lo, hi = min(ew_y(4, x) for x in xs), max(ew_y(4, x) for x in xs)
speed.append(("sz-02", "School zone 30 km/h, Jianjun Rd Experimental Primary School",
              Zone(rings=[[(-6400, lo - 90), (-5600, lo - 90), (-5600, hi + 380), (-6400, hi + 380)]]), 30))

# School B: east side of Dongjin Rd (i=4, x~4000), between y=-6000 and y=-3000, y ~ -4500
ys = [-4650 + 10 * k for k in range(31)]
road_right = max(ns_x(4, y) for y in ys)
school_b = Zone(rings=[[(road_right + 140, -4650), (road_right + 340, -4650), (road_right + 340, -4350), (road_right + 140, -4350)]])
restricted.append(("rz-03", "Dongjin Middle School (东进中学), school hours", school_b, SCHOOL_HOURS))
ys = [-4900 + 10 * k for k in range(81)]
lo, hi = min(ns_x(4, y) for y in ys), max(ns_x(4, y) for y in ys)
speed.append(("sz-03", "School zone 30 km/h, Dongjin Middle School",
              Zone(rings=[[(lo - 90, -4900), (hi + 400, -4900), (hi + 400, -4100), (lo - 90, -4100)]]), 30))

# Hospital: a circle, quiet at night (window crosses midnight)
restricted.append(("rz-04", "City No.1 People's Hospital (市第一人民医院), quiet hours",
                   Zone(circle=((6000, 4500), 300)), [{"days": "daily", "start": "22:00", "end": "06:00"}]))

# Water-source protection area in the north-west, always on
restricted.append(("rz-05", "Water-source protection area (水源保护区)",
                   Zone(rings=[blob(-12600, 10200, 500, n=9, jitter=0.15)]), None))

# Inner ring road: roads i=1, i=5, j=1, j=5 between their corners; 60 km/h along it
ring = []
corners = [(1, 1), (5, 1), (5, 5), (1, 5), (1, 1)]
for a, b in zip(corners, corners[1:]):
    step_i = (b[0] > a[0]) - (b[0] < a[0])
    step_j = (b[1] > a[1]) - (b[1] < a[1])
    cur = a
    while cur != b:
        nxt = (cur[0] + step_i, cur[1] + step_j)
        key = (cur, nxt) if (cur, nxt) in EDGES else (nxt, cur)
        poly = EDGES[key] if key == (cur, nxt) else list(reversed(EDGES[key]))
        ring.extend(poly if not ring else poly[1:])
        cur = nxt
outer = offset_polyline(ring, -60)  # ring runs counter-clockwise: right = outside
inner = offset_polyline(ring, 60)
speed.append(("sz-01", "Inner ring road (内环) 60 km/h", Zone(rings=[outer, list(reversed(inner))]), 60))

ZONES = [z for (_, _, z, _) in restricted]
OPEN = {k: v for k, v in EDGES.items() if all(z.dist_to_polyline(v) > ROUTE_CLEARANCE_M for z in ZONES)}
closed = sorted(set(EDGES) - set(OPEN))
assert closed, "the old town should close some road sections"


# ---------------------------------------------------------------- sites
def point_along(line, t):
    total = length(line) * t
    for k in range(len(line) - 1):
        seg = math.dist(line[k], line[k + 1])
        if total <= seg:
            f = total / seg
            return k, (line[k][0] + f * (line[k + 1][0] - line[k][0]), line[k][1] + f * (line[k + 1][1] - line[k][1]))
        total -= seg
    return len(line) - 2, line[-1]


def place_site(edge, t, side, offset, radius, taken):
    line = EDGES[edge]
    k, foot = point_along(line, t)
    dx, dy = line[k + 1][0] - line[k][0], line[k + 1][1] - line[k][1]
    l = math.hypot(dx, dy)
    nx, ny = -dy / l * side, dx / l * side
    c = (foot[0] + nx * offset, foot[1] + ny * offset)
    if any(math.dist(c, o) < 700 for o in taken):
        return None
    if any(z.dist_to_polyline([c, foot]) < radius + 250 for z in ZONES):
        return None
    other_roads = [v for key, v in EDGES.items() if key != edge]
    if any(min(seg_point_dist(v[m], v[m + 1], c) for m in range(len(v) - 1)) < offset + radius for v in other_roads):
        return None
    return {"edge": edge, "k": k, "foot": foot, "centre": c}


SITE_KINDS = ["residential project", "metro station works", "school expansion", "office tower",
              "riverside redevelopment", "hospital annex", "shopping centre", "road widening",
              "industrial park plot", "resettlement housing"]

sources, taken = [], []
interior = [e for e in sorted(OPEN) if 0 < e[0][0] < 6 and 0 < e[0][1] < 6 and 0 < e[1][0] < 6 and 0 < e[1][1] < 6]
while len(sources) < 20:
    edge = rng.choice(interior)
    if any(s["edge"] == edge for s in sources):
        continue
    s = place_site(edge, rng.uniform(0.3, 0.7), rng.choice([-1, 1]), 170, 110, taken)
    if s is None:
        continue
    n = len(sources) + 1
    s["id"] = f"s{n:02d}"
    s["name"] = f"{road_name(*edge)} {SITE_KINDS[n % len(SITE_KINDS)]} (source site s{n:02d})"
    s["polys"] = [blob(s["centre"][0], s["centre"][1], 110, n=rng.randint(5, 8), jitter=0.15)]
    if n == 7:  # a site with a separate staging yard: MultiPolygon
        cx, cy = s["centre"]
        s["polys"].append(blob(cx + 260 * (1 if cx < 0 else -1), cy, 50, n=5, jitter=0.1))
    sources.append(s)
    taken.append(s["centre"])

# disposal sites on outer road sections, offset away from the city
outer_edges = [e for e in sorted(OPEN) if (e[0][1] == e[1][1] and e[0][1] in (0, 6)) or (e[0][0] == e[1][0] and e[0][0] in (0, 6))]
DISPOSAL_NAMES = ["Southern landfill (城南消纳场)", "Eastern tidal-flat fill (东部滩涂消纳场)",
                  "Northern brickworks pit (城北砖厂坑塘消纳场)", "Western recycling plant (城西建筑垃圾资源化厂)",
                  "North-east quarry backfill (东北矿坑回填场)"]
disposals = []
wanted = [((2, 0), (3, 0)), ((6, 2), (6, 3)), ((3, 6), (4, 6)), ((0, 3), (0, 4)), ((5, 6), (6, 6))]
for edge in wanted:
    assert edge in OPEN, edge
    (i1, j1), (i2, j2) = edge
    # side pointing away from the city: for E-W roads left normal points north (+1)
    if j1 == j2:
        side = 1 if j1 == 6 else -1
    else:
        side = -1 if i1 == 6 else 1  # N-S road going north: left normal points west
    d = None
    for t in (0.5, 0.4, 0.6, 0.3, 0.7):
        d = place_site(edge, t, side, 280, 200, taken)
        if d:
            break
    assert d, edge
    n = len(disposals) + 1
    d["id"] = f"d{n:02d}"
    d["name"] = DISPOSAL_NAMES[n - 1]
    if n == 5:
        d["circle"] = 240
    else:
        d["polys"] = [blob(d["centre"][0], d["centre"][1], 200, n=8, jitter=0.12)]
    disposals.append(d)
    taken.append(d["centre"])


# ---------------------------------------------------------------- routing
def dijkstra(start):
    dist, prev = {start: 0.0}, {}
    heap = [(0.0, start)]
    adj = {}
    for (a, b), line in OPEN.items():
        w = length(line)
        adj.setdefault(a, []).append((b, w))
        adj.setdefault(b, []).append((a, w))
    while heap:
        d, u = heapq.heappop(heap)
        if d > dist.get(u, float("inf")):
            continue
        for v, w in adj.get(u, []):
            if d + w < dist.get(v, float("inf")):
                dist[v], prev[v] = d + w, u
                heapq.heappush(heap, (d + w, v))
    return dist, prev


def path_polyline(nodes):
    pts = []
    for a, b in zip(nodes, nodes[1:]):
        line = EDGES[(a, b)] if (a, b) in EDGES else list(reversed(EDGES[(b, a)]))
        pts.extend(line if not pts else line[1:])
    return pts


def leg_to_node(site, towards_end):
    """Polyline from the site's foot point along its road section to one end node."""
    a, b = site["edge"]
    line, k, foot = EDGES[site["edge"]], site["k"], site["foot"]
    if towards_end:
        return [foot] + line[k + 1:], b
    return [foot] + list(reversed(line[:k + 1])), a


def route_between(src, dst):
    best = None
    for s_end in (False, True):
        leg_s, node_s = leg_to_node(src, s_end)
        dist, prev = dijkstra(node_s)
        for d_end in (False, True):
            leg_d, node_d = leg_to_node(dst, d_end)
            if node_d not in dist:
                continue
            total = length(leg_s) + dist[node_d] + length(leg_d)
            if best is None or total < best[0]:
                nodes = [node_d]
                while nodes[-1] != node_s:
                    nodes.append(prev[nodes[-1]])
                nodes.reverse()
                body = path_polyline(nodes) if len(nodes) > 1 else [NODES[node_s]]
                line = [src["centre"]] + leg_s + body[1:] + list(reversed(leg_d))[1:] + [dst["centre"]]
                dedup = [line[0]]
                for p in line[1:]:
                    if math.dist(p, dedup[-1]) > 0.5:
                        dedup.append(p)
                best = (total, dedup, nodes)
    assert best, (src["id"], dst["id"])
    return best


pairs = [(s, disposals[k % 5]) for k, s in enumerate(sources)]
pairs += [(s, disposals[(k + 2) % 5]) for k, s in enumerate(sources[:10])]
routes = []
for n, (s, d) in enumerate(pairs):
    _, line, nodes = route_between(s, d)
    roads = []
    for a, b in zip(nodes, nodes[1:]):
        name = road_name(a, b).split(" (")[0]
        if not roads or roads[-1] != name:
            roads.append(name)
    rid = f"route-{s['id']}-{d['id']}"
    hw = [None, None, 40, 60][n % 4]
    routes.append({"id": rid, "source": s, "disposal": d, "line": line, "half_width_m": hw,
                   "name": f"{s['id']} to {d['id']} via " + (", ".join(roads) if roads else "local road")})

# ---------------------------------------------------------------- self-checks
def site_contains(site, p):
    if "circle" in site:
        return math.dist(site["centre"], p) <= site["circle"]
    return any(point_in_ring(p, poly) for poly in site["polys"])


for r in routes:
    assert site_contains(r["source"], r["line"][0]), r["id"]
    assert site_contains(r["disposal"], r["line"][-1]), r["id"]
    hw = r["half_width_m"] or 50
    for (zid, _, z, _) in restricted:
        dist = z.dist_to_polyline(r["line"])
        assert dist > hw + 20, (r["id"], zid, dist)
assert len(sources) == 20 and len(disposals) == 5 and len(routes) == 30


# ---------------------------------------------------------------- output
def feature(props, geometry):
    return {"type": "Feature", "properties": props, "geometry": geometry}


def write(name, features):
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", name)
    with open(path, "w", encoding="utf-8") as f:
        f.write('{"type":"FeatureCollection","features":[\n')
        f.write(",\n".join(json.dumps(ft, ensure_ascii=False, separators=(",", ":")) for ft in features))
        f.write("\n]}\n")


site_features = []
for s in sources:
    polys = [[close([to_lonlat(*p) for p in poly])] for poly in s["polys"]]
    geom = {"type": "Polygon", "coordinates": polys[0]} if len(polys) == 1 else {"type": "MultiPolygon", "coordinates": polys}
    site_features.append(feature({"id": s["id"], "kind": "source_site", "name": s["name"]}, geom))
for d in disposals:
    if "circle" in d:
        site_features.append(feature({"id": d["id"], "kind": "disposal_site", "name": d["name"], "radius_m": d["circle"]},
                                     {"type": "Point", "coordinates": to_lonlat(*d["centre"])}))
    else:
        site_features.append(feature({"id": d["id"], "kind": "disposal_site", "name": d["name"]},
                                     {"type": "Polygon", "coordinates": [close([to_lonlat(*p) for p in d["polys"][0]])]}))
write("sites.geojson", site_features)

route_features = []
for r in routes:
    props = {"id": r["id"], "kind": "route", "name": r["name"], "source": r["source"]["id"], "disposal": r["disposal"]["id"]}
    if r["half_width_m"]:
        props["half_width_m"] = r["half_width_m"]
    route_features.append(feature(props, {"type": "LineString", "coordinates": [to_lonlat(*p) for p in r["line"]]}))
write("routes.geojson", route_features)

zone_features = []
for zid, name, z, schedule in restricted:
    props = {"id": zid, "kind": "restricted_zone", "name": name}
    if z.circle:
        props["radius_m"] = z.circle[1]
    if schedule:
        props["schedule"] = schedule
    zone_features.append(feature(props, z.geometry()))
for zid, name, z, limit in speed:
    zone_features.append(feature({"id": zid, "kind": "speed_zone", "name": name, "speed_limit_kmh": limit}, z.geometry()))
write("zones.geojson", zone_features)
print(f"{len(sources)} source sites, {len(disposals)} disposal sites, {len(routes)} routes, "
      f"{len(restricted)} restricted zones, {len(speed)} speed zones; closed road sections: {len(closed)}")
