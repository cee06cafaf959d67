-- grid-lattice.sql - boundaries for the location benchmark: every grid of the org tree gets a
-- square cell of a regular lattice near Banan (0.005 degree, about 500 m a side), and its
-- micro-grids split the cell into strips from south to north. Edges are cut into segments of
-- at most 0.0002 degree (a grid has 101 vertices, closer to a surveyed boundary than a bare
-- square). Replaces unit_boundary; run-broker-bench.sh applies it when GD_BENCH_GEO=1 and no
-- GD_BENCH_BOUNDARIES is named.
BEGIN;
DELETE FROM unit_boundary;
CREATE TEMP TABLE cell ON COMMIT DROP AS
SELECT code, 106.40 + 0.005 * (n % 46) AS x, 29.30 + 0.005 * (n / 46) AS y
FROM (SELECT code, (row_number() OVER (ORDER BY code COLLATE "C") - 1)::int AS n
      FROM org_unit WHERE level = 'grid') g;
INSERT INTO unit_boundary (unit, geom)
SELECT code, ST_Multi(ST_Segmentize(ST_MakeEnvelope(x, y, x + 0.005, y + 0.005, 4326), 0.0002))
FROM cell;
INSERT INTO unit_boundary (unit, geom)
SELECT m.code,
       ST_Multi(ST_Segmentize(ST_MakeEnvelope(c.x, c.y + 0.005 * m.k / m.n, c.x + 0.005,
                                              c.y + 0.005 * (m.k + 1) / m.n, 4326), 0.0002))
FROM (SELECT code, parent, (row_number() OVER (PARTITION BY parent ORDER BY code COLLATE "C")
                            - 1)::float8 AS k,
             count(*) OVER (PARTITION BY parent)::float8 AS n
      FROM org_unit WHERE level = 'micro_grid') m
JOIN cell c ON c.code = m.parent;
COMMIT;
