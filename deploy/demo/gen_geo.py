#!/usr/bin/python3
"""Generate the demo district's boundaries and address points from its org tree.

Every unit of deploy/demo/data/org_units.csv gets a polygon: the district an
irregular outline elongated north-south (roughly Banan's place and size,
lon 106.5-106.95, lat 29.1-29.75), each unit's children tiling it exactly.
A unit is cut in two by a straight line (across its longer side, a little
tilted) so that the two halves' areas follow their children's weights,
and each half again, until every child has its piece. Streets (街道) and
residents' communities (社区) are denser than towns and villages, so they
get less area per household. Cut points are rounded to 1e-5 degrees and
shared: a point put on an edge is put into every piece that has the edge,
so neighbours share their vertices exactly, and a unit's polygon is the
outline of its leaves' pieces. The result imports without overlaps or
gaps (broker/sql/0008_geo_import.sql).

The address points are numbers (1号, 2号, ...) along made-up roads with
real-sounding names, each road a straight stretch inside one town.

    deploy/demo/gen_geo.py [ORG_CSV [OUTDIR]]
        (default: deploy/demo/data/org_units.csv, and its directory)

Writes boundaries.csv (code,wkt) and addresses.csv (road,number,lon,lat,label)
and prints counts. Deterministic (fixed seed): the same org tree always gives
the same files. Standard library only.
"""

import csv
import math
import os
import random
import sys

SEED = 500113
SCALE = 100_000             # coordinates are integers in 1e-5 degrees (about 1 m)
CENTRE = (106.725, 29.43)   # lon, lat
RADII = (0.19, 0.27)        # degrees east-west, north-south (times up to 1.17)
OUTLINE_POINTS = 48
COS_LAT = math.cos(math.radians(CENTRE[1]))

# Area per household relative to a rural household.
DENSITY = {"street": 0.35, "town": 1.0, "community": 0.5, "village": 1.6}
SPECIAL_GRID_WEIGHT = 150   # households a special grid's area stands for
N_ADDRESS_ROADS = 60
ROAD_NUMBERS = (20, 90)
DOOR_OFFSET_M = 15          # door numbers stand this far off the road's line
M_PER_DEGREE = 111_320

ROAD_STEMS = [
    "龙洲", "渝南", "巴滨", "鱼洞", "箭河", "龙海", "融汇", "花溪", "南泉", "李家沱",
    "马王坪", "红光", "一品", "界石", "南彭", "惠民", "木洞", "东温泉", "丰盛", "二圣",
    "姜家", "接龙", "石滩", "石龙", "圣灯山", "天星寺", "安澜", "跳石", "双河口", "麻柳",
    "龙湾", "云篆", "巴州", "江滨", "鱼轻", "盛景", "渝南二", "松筠", "清华", "民主",
]
ROAD_KINDS = ["大道", "路", "正街", "街", "东路", "西路", "南路", "北路", "支路", "巷"]


class Mesh:
    """Polygons (rings of vertex ids, counter-clockwise) over shared integer vertices."""

    def __init__(self):
        self.xy = []          # vertex id -> (x, y)
        self.rings = {}       # piece id -> [vertex ids]
        self.owners = {}      # undirected edge (a, b), a < b -> {piece ids}
        self.next_id = 0

    def vertex(self, x, y):
        self.xy.append((x, y))
        return len(self.xy) - 1

    def _edges(self, ring):
        return [(ring[i], ring[(i + 1) % len(ring)]) for i in range(len(ring))]

    def add(self, ring):
        pid = self.next_id
        self.next_id += 1
        self.rings[pid] = ring
        for a, b in self._edges(ring):
            self.owners.setdefault((min(a, b), max(a, b)), set()).add(pid)
        return pid

    def remove(self, pid):
        for a, b in self._edges(self.rings[pid]):
            self.owners[(min(a, b), max(a, b))].discard(pid)
        return self.rings.pop(pid)

    def split_edge(self, a, b, w):
        """Puts vertex w between a and b in every piece that has the edge a-b."""
        key = (min(a, b), max(a, b))
        for pid in list(self.owners.pop(key, ())):
            ring = self.rings[pid]
            n = len(ring)
            for i in range(n):
                u, v = ring[i], ring[(i + 1) % n]
                if (u, v) in ((a, b), (b, a)):
                    ring.insert(i + 1, w)
                    break
            self.owners.setdefault((min(u, w), max(u, w)), set()).add(pid)
            self.owners.setdefault((min(w, v), max(w, v)), set()).add(pid)


def signed_area(pts):
    return sum(pts[i][0] * pts[i - 1][1] - pts[i - 1][0] * pts[i][1]
               for i in range(len(pts))) / -2.0


def clipped_area(pts, nx, ny, c):
    """Area of the part of polygon pts where nx*x + ny*y < c."""
    out = []
    n = len(pts)
    for i in range(n):
        p, q = pts[i], pts[(i + 1) % n]
        dp = nx * p[0] + ny * p[1] - c
        dq = nx * q[0] + ny * q[1] - c
        if dp < 0:
            out.append(p)
        if (dp < 0) != (dq < 0):
            t = dp / (dp - dq)
            out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
    return abs(signed_area(out)) if len(out) >= 3 else 0.0


def cut(mesh, pid, fraction, rng):
    """Cuts piece pid by a line into two pieces, the first with `fraction` of its area.

    Returns (first, second) piece ids."""
    ring = mesh.rings[pid]
    pts = [mesh.xy[v] for v in ring]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    wide = (max(xs) - min(xs)) * COS_LAT > max(ys) - min(ys)
    total = abs(signed_area(pts))
    for attempt in range(40):
        # the cut runs across the longer side: its normal along that side,
        # pointing east or south, so that the first children (the streets,
        # the residents' communities) lie to the west and north, where
        # Banan's built-up area is
        base = 0.0 if wide else -math.pi / 2
        angle = base + rng.uniform(-0.35, 0.35) * (1 if attempt < 20 else 2)
        nx, ny = math.cos(angle) / COS_LAT, math.sin(angle)
        proj = [nx * p[0] + ny * p[1] for p in pts]
        lo, hi = min(proj), max(proj)
        for _ in range(60):
            mid = (lo + hi) / 2
            if clipped_area(pts, nx, ny, mid) < fraction * total:
                lo = mid
            else:
                hi = mid
        c = (lo + hi) / 2
        d = [x - c for x in proj]
        if any(abs(x) < 1e-6 for x in d):
            continue
        crossings = [i for i in range(len(ring)) if (d[i] < 0) != (d[(i + 1) % len(ring)] < 0)]
        if len(crossings) == 2:
            break
    else:
        raise RuntimeError(f"no straight cut divides piece {pid} in two")
    n_old = len(ring)
    # the ring's vertices after the first crossed edge, up to the second, lie
    # on one side of the line; the piece made of them is the first piece if
    # that side is the negative one
    negative = d[(crossings[0] + 1) % n_old] < 0
    ends = []
    for i in crossings:
        a, b = ring[i], ring[(i + 1) % n_old]
        (ax, ay), (bx, by) = mesh.xy[a], mesh.xy[b]
        t = d[i] / (d[i] - d[(i + 1) % n_old])
        x, y = round(ax + t * (bx - ax)), round(ay + t * (by - ay))
        # a point that rounds onto (or next to) an end of the edge is that end
        if abs(x - ax) + abs(y - ay) <= 2:
            ends.append((a, None))
        elif abs(x - bx) + abs(y - by) <= 2:
            ends.append((b, None))
        else:
            ends.append((mesh.vertex(x, y), (a, b)))
    for w, edge in ends:
        if edge:
            mesh.split_edge(edge[0], edge[1], w)
    ring = mesh.remove(pid)
    (w1, _), (w2, _) = ends
    i1, i2 = ring.index(w1), ring.index(w2)
    n = len(ring)
    half_a = [ring[(i1 + k) % n] for k in range((i2 - i1) % n + 1)]   # w1 .. w2
    half_b = [ring[(i2 + k) % n] for k in range((i1 - i2) % n + 1)]   # w2 .. w1
    if w1 == w2 or len(half_a) < 3 or len(half_b) < 3:
        raise RuntimeError(f"degenerate cut of piece {pid}")
    first, second = (half_a, half_b) if negative else (half_b, half_a)
    return mesh.add(first), mesh.add(second)


def divide(mesh, pid, children, weight, rng, into):
    """Tiles piece pid with one piece per child (in code order, by weight)."""
    if len(children) == 1:
        into[children[0]] = pid
        return
    total = sum(weight[c] for c in children)
    acc, k, best = 0.0, 1, None
    for i in range(1, len(children)):
        acc += weight[children[i - 1]]
        if best is None or abs(acc - total / 2) < best:
            best, k = abs(acc - total / 2), i
    share = sum(weight[c] for c in children[:k]) / total
    first, second = cut(mesh, pid, share, rng)
    divide(mesh, first, children[:k], weight, rng, into)
    divide(mesh, second, children[k:], weight, rng, into)


def outline(rng):
    """The district: an irregular ring elongated north-south, counter-clockwise."""
    pts = []
    for i in range(OUTLINE_POINTS):
        a = 2 * math.pi * i / OUTLINE_POINTS
        r = 1 + 0.09 * math.sin(3 * a + 0.7) + 0.05 * math.sin(7 * a) + rng.uniform(-0.03, 0.03)
        pts.append((round((CENTRE[0] + RADII[0] * r * math.cos(a)) * SCALE),
                    round((CENTRE[1] + RADII[1] * r * math.sin(a)) * SCALE)))
    return pts


def weights(units, kids):
    w = {}
    for u in units.values():
        code, level = u["code"], u["level"]
        if u["kind"] == "special":
            w[code] = SPECIAL_GRID_WEIGHT
            continue
        hh = int(u["households"] or 0) or SPECIAL_GRID_WEIGHT
        if level == "town":
            hh *= DENSITY["street" if code[6] == "0" else "town"]
        elif level == "community":
            hh *= DENSITY["community" if code[9] in "01" else "village"]
        w[code] = hh
    return w


def leaf_outline(mesh, leaf_rings):
    """The outer ring of the union of pieces that tile a unit: their edges
    that no other of them shares, chained."""
    directed = set()
    for ring in leaf_rings:
        directed.update(mesh._edges(ring))
    nxt = {a: b for a, b in directed if (b, a) not in directed}
    start = min(nxt, key=lambda v: mesh.xy[v])
    ring, v = [start], nxt[start]
    while v != start:
        ring.append(v)
        v = nxt[v]
    if len(ring) != len(nxt):
        raise RuntimeError("a unit's pieces do not form one ring")
    return ring


def deg(v):
    return f"{v // SCALE}.{v % SCALE:05d}"


def wkt(mesh, ring):
    pts = ring + ring[:1]
    return "MULTIPOLYGON(((" + ",".join(f"{deg(mesh.xy[v][0])} {deg(mesh.xy[v][1])}"
                                         for v in pts) + ")))"


def inside(pts, x, y):
    """Whether (x, y) is inside polygon pts (ray casting)."""
    hit = False
    for i in range(len(pts)):
        (ax, ay), (bx, by) = pts[i - 1], pts[i]
        if (ay > y) != (by > y) and x < ax + (y - ay) * (bx - ax) / (by - ay):
            hit = not hit
    return hit


def addresses(mesh, towns, town_ring, rng):
    """Numbered points along straight roads, each inside one town."""
    rows, used = [], set()
    stems = ROAD_STEMS[:]
    for k in range(N_ADDRESS_ROADS):
        town = towns[k % len(towns)]
        pts = [mesh.xy[v] for v in town_ring[town["code"]]]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        while True:
            name = rng.choice(stems) + rng.choice(ROAD_KINDS)
            if name not in used:
                used.add(name)
                break

        def somewhere():
            while True:
                x, y = rng.randint(min(xs), max(xs)), rng.randint(min(ys), max(ys))
                if inside(pts, x, y):
                    return x, y
        (x0, y0), (x1, y1) = somewhere(), somewhere()
        count = rng.randint(*ROAD_NUMBERS)
        length = math.hypot((x1 - x0) * COS_LAT, y1 - y0) or 1
        # odd numbers on one side, even on the other
        off = DOOR_OFFSET_M / M_PER_DEGREE * SCALE
        ox, oy = -(y1 - y0) / length * off / COS_LAT, (x1 - x0) * COS_LAT / length * off
        for n in range(1, count + 1):
            t = n / (count + 1)
            side = 1 if n % 2 else -1
            x = round(x0 + t * (x1 - x0) + side * ox)
            y = round(y0 + t * (y1 - y0) + side * oy)
            if inside(pts, x, y):
                rows.append((name, f"{n}号", deg(x), deg(y), f"{town['name']}{name}{n}号"))
    return rows


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    org_csv = argv[1] if len(argv) > 1 else os.path.join(here, "data", "org_units.csv")
    outdir = argv[2] if len(argv) > 2 else os.path.dirname(org_csv)
    with open(org_csv, encoding="utf-8", newline="") as f:
        units = {r["code"]: r for r in csv.DictReader(f)}
    kids = {}
    for u in units.values():
        kids.setdefault(u["parent"], []).append(u["code"])
    for c in kids.values():
        c.sort()
    weight = weights(units, kids)
    rng = random.Random(SEED)

    mesh = Mesh()
    district = kids[""][0]
    piece = {district: mesh.add([mesh.vertex(x, y) for x, y in outline(rng)])}
    # level by level, so that every unit is cut while its neighbours are whole
    level = [district]
    while level:
        below = []
        for code in level:
            children = kids.get(code, [])
            if children:
                into = {}
                divide(mesh, piece.pop(code), children, weight, rng, into)
                piece.update(into)
                below.extend(children)
        level = below

    # a unit's ring: its own piece if it is a leaf, else its leaves' outline
    leaves = {}
    for code in piece:
        u = code
        while u:
            leaves.setdefault(u, []).append(mesh.rings[piece[code]])
            u = units[u]["parent"]
    ring = {code: (mesh.rings[piece[code]] if code in piece else leaf_outline(mesh, leaves[code]))
            for code in units}

    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "boundaries.csv"), "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["code", "wkt"])
        for code in sorted(units, key=lambda c: (len(c), c)):
            w.writerow([code, wkt(mesh, ring[code])])
    towns = [units[c] for c in kids[district]]
    rows = addresses(mesh, towns, ring, rng)
    with open(os.path.join(outdir, "addresses.csv"), "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["road", "number", "lon", "lat", "label"])
        w.writerows(rows)
    most = max(len(r) for r in ring.values())
    print(f"{len(units)} boundaries (at most {most} vertices), {len(rows)} addresses "
          f"-> {outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
