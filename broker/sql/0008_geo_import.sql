-- 0008_geo_import.sql: import of org-unit boundaries and of the address table (0007_geo.sql).
--
-- Both imports work like those of 0002_import.sql, in one transaction:
--   1. stage the file: COPY it into import_unit_boundary or
--      import_address_point (every column text, so COPY only fails on the
--      file's shape, never on a value);
--   2. SELECT gd_import_boundaries() / gd_import_addresses(): validate every
--      staged row, refuse the whole file with one error listing each bad
--      feature or line, or write every row and empty the staging table.
-- A refused import raises, so the transaction rolls back and nothing is
-- changed. Imports only insert or replace: a unit or address missing from
-- the file keeps what it has.
--
-- Boundaries come as CSV `code,wkt` (COPY straight into the `code` and `wkt`
-- columns; WKT or EWKT, Polygon or MultiPolygon) or as a GeoJSON
-- FeatureCollection, which gdctl reads and stages one feature per row into
-- `code` and `geojson` (the feature's geometry object) with `feature` true,
-- and `problem` set when the feature itself is malformed (no geometry, too
-- many vertices). A
-- staged row is called "line N" (CSV, header = line 1) or "feature N"
-- (GeoJSON, the first feature = feature 1) in the messages.
--
-- What a boundary must be (every rule is one message naming the feature):
--   - its unit code is in org_unit (import the org tree first), once per file;
--   - a Polygon or MultiPolygon, not empty, SRID 4326 or none, rings closed,
--     valid (ST_IsValidReason), longitude within ±180 and latitude within ±90,
--     at most gd_geo_max_vertices() vertices (and gd_geo_max_text() bytes of
--     text); a file holds at most gd_geo_max_features() features;
--   - inside the polygon of its nearest ancestor that has one (its parent's,
--     else the grandparent's ... up to the district's), in the file or stored,
--     within the tolerance gd_geo_tolerance() (1e-5 degrees, about 1 m: a
--     unit may stick out of its ancestor by that much, digitising noise).
--     When no ancestor has a polygon the unit is not checked, and the import
--     says so in a WARNING naming the district; it is not refused;
--   - not overlapping another unit of the same level (any parent): the
--     polygons after the import are compared, i.e. the file's and the stored
--     ones of units the file does not name. An overlap counts when it is
--     wider than the tolerance somewhere (shrunk by half the tolerance it is
--     not empty), so shared borders digitised twice do not count;
--   - when it replaces a stored polygon: still covering the stored polygons
--     of its children that the file does not replace (a moved border must
--     bring the children's new polygons in the same file).
-- Heights (Z) and measures (M) are dropped; a Polygon is stored as a
-- one-part MultiPolygon.
--
-- Addresses come as CSV `road,number,lon,lat` or `road,number,lon,lat,label`
-- (gdctl picks the column list by the header), or as GeoJSON Points with
-- properties road, number and optionally label (staged by gdctl with the
-- point's coordinates in lon and lat). road and number are stored in their
-- gd_address_norm() form (0007_geo.sql); number is the door number as
-- written, e.g. `123号` or `8号附1号`. Rules: road and number not empty (also
-- after normalisation) and at most 200 characters, lon and lat decimal
-- numbers within ±180 and ±90, label at most 200 characters, each normalised
-- (road, number) once per file, at most gd_address_max_rows() rows, and
-- inside the district's polygon (within the tolerance) when the district has
-- one. An address already stored is replaced (point and label).
--
-- The broker reads boundaries and addresses at start and on SIGHUP, so an
-- import takes effect after `systemctl reload gd-broker`.

BEGIN;
SELECT pg_advisory_xact_lock(7347001);

DO $migration$
BEGIN
IF EXISTS (SELECT 1 FROM schema_version WHERE version = 8) THEN
    RETURN;
END IF;

-- Staging tables, UNLOGGED as in 0002_import.sql.
CREATE UNLOGGED TABLE import_unit_boundary (
    line_seq bigint GENERATED ALWAYS AS IDENTITY,
    code     text,
    wkt      text,
    geojson  text,
    problem  text,
    feature  boolean  -- gdctl sets it for GeoJSON: rows are features, not lines
);
CREATE UNLOGGED TABLE import_address_point (
    line_seq bigint GENERATED ALWAYS AS IDENTITY,
    road     text,
    number   text,
    lon      text,
    lat      text,
    label    text,
    problem  text,
    feature  boolean  -- gdctl sets it for GeoJSON: rows are features, not lines
);

-- Limits of one import; gdctl applies the same ones while it reads a file.
CREATE FUNCTION gd_geo_max_features() RETURNS integer
LANGUAGE sql IMMUTABLE AS $fn$ SELECT 100000 $fn$;
CREATE FUNCTION gd_geo_max_vertices() RETURNS integer
LANGUAGE sql IMMUTABLE AS $fn$ SELECT 50000 $fn$;
CREATE FUNCTION gd_geo_max_text() RETURNS integer
LANGUAGE sql IMMUTABLE AS $fn$ SELECT 4194304 $fn$;
CREATE FUNCTION gd_address_max_rows() RETURNS integer
LANGUAGE sql IMMUTABLE AS $fn$ SELECT 1000000 $fn$;

-- How far (degrees) a unit may reach beyond its ancestor's polygon, and how
-- wide an overlap of two units may be, before it counts: 1e-5 degrees is
-- 1.1 m north-south and about 1 m east-west at Chongqing's latitude.
CREATE FUNCTION gd_geo_tolerance() RETURNS double precision
LANGUAGE sql IMMUTABLE AS $fn$ SELECT 1e-5::double precision $fn$;

-- Refuse an import, like gd_import_refuse() (0002_import.sql), with its own
-- HINT (GeoJSON files count features, not lines).
CREATE FUNCTION gd_import_refuse(what text, problems text[], hint text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    n     constant integer := coalesce(cardinality(problems), 0);
    shown constant integer := 50;
BEGIN
    IF n = 0 THEN
        RETURN;
    END IF;
    IF n = 1 THEN
        RAISE EXCEPTION USING
            ERRCODE = 'data_exception',
            MESSAGE = format('%s import refused, nothing was changed: %s', what, problems[1]),
            HINT = hint;
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = 'data_exception',
        MESSAGE = format('%s import refused, nothing was changed: %s (%s problems in all, see DETAIL)',
                         what, problems[1], n),
        DETAIL = array_to_string(problems[1:shown], E'\n')
                 || CASE WHEN n > shown THEN format(E'\n... and %s more', n - shown) ELSE '' END,
        HINT = hint;
END
$fn$;

-- The geometry that staged text spells (GeoJSON when `geojson` is not NULL,
-- else WKT/EWKT), or NULL and what is wrong with it. Never raises. Text
-- longer than gd_geo_max_text() is not read (NULL, NULL: the caller says so).
CREATE FUNCTION gd_import_geom(wkt text, geojson text, OUT geom geometry, OUT problem text)
LANGUAGE plpgsql IMMUTABLE AS $fn$
BEGIN
    IF coalesce(length(geojson), length(wkt), 0) > gd_geo_max_text() THEN
        RETURN;
    END IF;
    IF geojson IS NOT NULL THEN
        geom := ST_GeomFromGeoJSON(geojson);
    ELSIF nullif(btrim(wkt), '') IS NULL THEN
        problem := 'geometry is empty';
    ELSE
        geom := ST_GeomFromEWKT(btrim(wkt));
    END IF;
EXCEPTION WHEN others THEN
    geom := NULL;
    problem := CASE
        WHEN SQLERRM LIKE '%non-closed ring%'
        THEN 'a ring is not closed: its last point must repeat its first'
        ELSE 'geometry cannot be read: ' || SQLERRM
    END;
END
$fn$;

-- Which ring of polygon geometry G is the first that does not end at its
-- start ("the outer ring of polygon 2", "hole 1 of polygon 1"), or NULL when
-- every ring is closed.
-- (The GeoJSON reader accepts open rings; the WKT reader refuses them.)
CREATE FUNCTION gd_geom_open_ring(g geometry) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $fn$
DECLARE
    part record;
    i    integer;
BEGIN
    FOR part IN SELECT path, geom FROM ST_Dump(g) LOOP
        IF NOT ST_IsClosed(ST_ExteriorRing(part.geom)) THEN
            RETURN format('the outer ring of polygon %s', coalesce(part.path[1], 1));
        END IF;
        FOR i IN 1..ST_NumInteriorRings(part.geom) LOOP
            IF NOT ST_IsClosed(ST_InteriorRingN(part.geom, i)) THEN
                RETURN format('hole %s of polygon %s', i, coalesce(part.path[1], 1));
            END IF;
        END LOOP;
    END LOOP;
    RETURN NULL;
END
$fn$;

-- S as a message shows it: at most 64 characters, then "...".
CREATE FUNCTION gd_geo_cut(s text) RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT CASE WHEN length(s) > 64 THEN left(s, 64) || '...' ELSE s END
$fn$;

-- Area of G for messages: "12 m²", or "3.4 km²" from 1 km² on.
CREATE FUNCTION gd_geo_area(g geometry) RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT CASE WHEN a < 1e6 THEN format('%s m²', round(a)::bigint)
                ELSE format('%s km²', round((a / 1e6)::numeric, 1)) END
      FROM (SELECT coalesce(ST_Area(ST_SetSRID(g, 4326)::geography), 0) AS a) x
$fn$;

-- Import the staged boundaries (import_unit_boundary). Returns how many
-- units the file gave a polygon. Raises (and changes nothing) when any
-- feature is bad; warns when no ancestor polygon could be checked.
CREATE FUNCTION gd_import_boundaries() RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    tol       constant double precision := gd_geo_tolerance();
    problems  text[];
    n_rows    integer;
    from_json boolean;
    unchecked text;
BEGIN
    PERFORM pg_advisory_xact_lock(7347002);

    SELECT count(*), coalesce(bool_or(feature), false) INTO n_rows, from_json
      FROM import_unit_boundary;
    IF n_rows > gd_geo_max_features() THEN
        PERFORM gd_import_refuse('boundary',
            ARRAY[format('the file has %s features; at most %s are allowed in one import '
                         '(split it, e.g. by town)', n_rows, gd_geo_max_features())],
            'Fix the file and import it again.');
    END IF;

    IF to_regclass('pg_temp.gd_stage_boundary') IS NOT NULL THEN  -- called twice in one transaction
        DROP TABLE pg_temp.gd_stage_boundary;
    END IF;
    -- One row per staged feature: its label for messages, its unit, the
    -- geometry read and what is wrong with it on its own (NULL: nothing).
    CREATE TEMP TABLE gd_stage_boundary ON COMMIT DROP AS
    WITH staged AS (
        SELECT row_number() OVER (ORDER BY line_seq) AS n, nullif(btrim(code), '') AS code,
               wkt, b.geojson, b.problem
          FROM import_unit_boundary b
    ),
    parsed AS (
        SELECT s.n, s.code, s.problem AS staged_problem,
               CASE WHEN from_json THEN format('feature %s', s.n)
                    ELSE format('line %s', s.n + 1) END AS label,
               coalesce(length(s.geojson), length(s.wkt), 0) AS text_len,
               g.geom, g.problem AS parse_problem
          FROM staged s
          LEFT JOIN LATERAL gd_import_geom(CASE WHEN s.problem IS NULL THEN s.wkt END,
                                           CASE WHEN s.problem IS NULL THEN s.geojson END) g
                 ON true
    )
    SELECT p.n, p.label, p.code, u.level, u.parent, p.geom, p.staged_problem,
           CASE
               WHEN p.staged_problem IS NOT NULL THEN p.staged_problem
               WHEN p.text_len > gd_geo_max_text()
               THEN format('geometry text is %s bytes long; at most %s are allowed',
                           p.text_len, gd_geo_max_text())
               WHEN p.parse_problem IS NOT NULL THEN p.parse_problem
               WHEN ST_GeometryType(p.geom) NOT IN ('ST_Polygon', 'ST_MultiPolygon')
               THEN format('is a %s; a boundary must be a Polygon or MultiPolygon',
                           substr(ST_GeometryType(p.geom), 4))
               WHEN ST_IsEmpty(p.geom) THEN 'geometry is empty'
               WHEN ST_SRID(p.geom) NOT IN (0, 4326)
               THEN format('has SRID %s; coordinates must be longitude, latitude in WGS 84 '
                           '(SRID 4326, or no SRID given)', ST_SRID(p.geom))
               WHEN ST_NPoints(p.geom) > gd_geo_max_vertices()
               THEN format('has %s vertices; at most %s are allowed per feature '
                           '(simplify it)', ST_NPoints(p.geom), gd_geo_max_vertices())
               WHEN ST_XMin(p.geom) < -180 OR ST_XMax(p.geom) > 180
                    OR ST_YMin(p.geom) < -90 OR ST_YMax(p.geom) > 90
               THEN format('coordinates out of range: longitude %s to %s, latitude %s to %s; '
                           'longitude must be within ±180 and latitude within ±90 '
                           '(longitude comes first)',
                           ST_XMin(p.geom), ST_XMax(p.geom), ST_YMin(p.geom), ST_YMax(p.geom))
               WHEN gd_geom_open_ring(p.geom) IS NOT NULL
               THEN format('a ring is not closed (%s): its last point must repeat its first',
                           gd_geom_open_ring(p.geom))
               -- ST_IsValidDetail, unlike ST_IsValid, raises no NOTICE
               WHEN NOT (ST_IsValidDetail(p.geom)).valid
               THEN format('invalid polygon: %s at %s', (ST_IsValidDetail(p.geom)).reason,
                           ST_AsText((ST_IsValidDetail(p.geom)).location))
           END AS problem
      FROM parsed p
      LEFT JOIN org_unit u ON u.code = p.code;

    -- Polygons as they will be: the file's good features (2D multipolygons)
    -- and the stored ones of units the file does not name.
    IF to_regclass('pg_temp.gd_geo_after') IS NOT NULL THEN
        DROP TABLE pg_temp.gd_geo_after;
    END IF;
    CREATE TEMP TABLE gd_geo_after ON COMMIT DROP AS
    SELECT s.code, s.level, s.n, s.label,
           ST_Multi(ST_Force2D(ST_SetSRID(s.geom, 4326)))::geometry(MultiPolygon, 4326) AS geom
      FROM (SELECT s.*, row_number() OVER (PARTITION BY s.code ORDER BY s.n) AS k
              FROM gd_stage_boundary s) s
     WHERE s.k = 1 AND s.problem IS NULL AND s.level IS NOT NULL
    UNION ALL
    SELECT b.unit, u.level, NULL, NULL, b.geom
      FROM unit_boundary b
      JOIN org_unit u ON u.code = b.unit
     WHERE NOT EXISTS (SELECT 1 FROM gd_stage_boundary s WHERE s.code = b.unit);
    CREATE INDEX ON gd_geo_after USING gist (geom);
    CREATE INDEX ON gd_geo_after (code);
    ANALYZE gd_geo_after;

    WITH s AS (
        -- without the geometries, which would make the sort spill to disk
        SELECT s.n, s.label, s.code, s.level, s.problem, s.staged_problem,
               min(s.n) OVER w AS first_n, first_value(s.label) OVER w AS first_label
          FROM gd_stage_boundary s
        WINDOW w AS (PARTITION BY s.code ORDER BY s.n)
    ),
    mine AS (
        SELECT * FROM gd_geo_after WHERE n IS NOT NULL
    ),
    -- Each of the file's units with its nearest ancestor that has a polygon
    -- after the import (NULL: none has).
    anc AS (
        SELECT m.code, m.label, m.n, m.geom,
               coalesce(a1.code, a2.code, a3.code, a4.code) AS anc,
               coalesce(a1.geom, a2.geom, a3.geom, a4.geom) AS anc_geom,
               coalesce(a1.n, a2.n, a3.n, a4.n) IS NOT NULL AS anc_in_file,
               (u1.code = coalesce(a1.code, a2.code, a3.code, a4.code)) AS anc_is_parent,
               coalesce(u4.code, u3.code, u2.code, u1.code) AS district
          FROM mine m
          JOIN org_unit u0 ON u0.code = m.code
          LEFT JOIN org_unit u1 ON u1.code = u0.parent
          LEFT JOIN org_unit u2 ON u2.code = u1.parent
          LEFT JOIN org_unit u3 ON u3.code = u2.parent
          LEFT JOIN org_unit u4 ON u4.code = u3.parent
          LEFT JOIN gd_geo_after a1 ON a1.code = u1.code
          LEFT JOIN gd_geo_after a2 ON a2.code = u2.code
          LEFT JOIN gd_geo_after a3 ON a3.code = u3.code
          LEFT JOIN gd_geo_after a4 ON a4.code = u4.code
    ),
    problem(n, label, code, what) AS (
        SELECT n, label, code, problem FROM s WHERE problem IS NOT NULL
        UNION ALL
        SELECT n, label, code,
               'code is empty' || CASE WHEN from_json THEN ' (properties.code)' ELSE '' END
          -- what gdctl found wrong with a feature says all about its code
          FROM s WHERE code IS NULL AND staged_problem IS NULL
        UNION ALL
        SELECT n, label, code, 'unknown unit code: not in org_unit (import the org tree first)'
          FROM s WHERE code IS NOT NULL AND level IS NULL
        UNION ALL
        SELECT n, label, code, format('duplicate code, already in %s', first_label)
          FROM s WHERE code IS NOT NULL AND n > first_n
        UNION ALL
        SELECT a.n, a.label, a.code,
               format('lies outside %s %s''s polygon (%s): %s of it is outside '
                      '(tolerance %s degrees)',
                      CASE WHEN a.anc = a.district THEN 'the district'
                           WHEN a.anc_is_parent THEN 'its parent'
                           ELSE 'its ancestor' END,
                      a.anc, CASE WHEN a.anc_in_file THEN 'in this file' ELSE 'stored' END,
                      gd_geo_area(ST_Difference(a.geom, a.anc_geom)), tol)
          FROM anc a
         WHERE a.anc IS NOT NULL
           AND NOT ST_CoveredBy(a.geom, a.anc_geom)
           AND NOT ST_CoveredBy(a.geom, ST_Buffer(a.anc_geom, tol))
        UNION ALL
        SELECT m.n, m.label, m.code,
               format('overlaps %s %s (%s) by %s', o.level, o.code,
                      coalesce(o.label, 'stored'), gd_geo_area(ST_Intersection(m.geom, o.geom)))
          FROM mine m
          JOIN gd_geo_after o
            ON o.geom && m.geom AND o.level = m.level AND o.code <> m.code
               AND (o.n IS NULL OR o.n < m.n)
         WHERE ST_Relate(m.geom, o.geom, 'T********')
           AND NOT ST_IsEmpty(ST_Buffer(ST_Intersection(m.geom, o.geom), -tol / 2))
        UNION ALL
        SELECT m.n, m.label, m.code,
               format('no longer covers the stored polygon of its %s %s, which this file does '
                      'not replace: %s of it would be outside (put %s''s new polygon in the '
                      'same file)', c.level, c.code, gd_geo_area(ST_Difference(c.geom, m.geom)),
                      c.code)
          FROM mine m
          JOIN org_unit cu ON cu.parent = m.code
          JOIN gd_geo_after c ON c.code = cu.code AND c.n IS NULL
         WHERE NOT ST_CoveredBy(c.geom, m.geom)
           AND NOT ST_CoveredBy(c.geom, ST_Buffer(m.geom, tol))
    )
    SELECT array_agg(format('%s%s: %s', label,
                            CASE WHEN code IS NOT NULL THEN format(' (code %s)', gd_geo_cut(code))
                                 ELSE '' END,
                            what)
                     ORDER BY n, what)
      INTO problems
      FROM problem;

    PERFORM gd_import_refuse('boundary', problems,
        CASE WHEN from_json
             THEN 'Features count from 1 in the order of the file. Fix the file and import it again.'
             ELSE 'Line numbers count the CSV header as line 1. Fix the file and import it again.'
        END);

    -- Units that no ancestor polygon could check: only possible when the
    -- district has no polygon.
    SELECT format('%s units were not checked against the outline of their district%s, which has '
                  'no polygon (import the district''s boundary to check them)',
                  count(*), coalesce(' ' || string_agg(DISTINCT d.code, ', '), ''))
      INTO unchecked
      FROM gd_geo_after m
      JOIN org_unit u ON u.code = m.code
      LEFT JOIN LATERAL (
          WITH RECURSIVE up(code, parent) AS (
              SELECT u.code, u.parent
              UNION ALL
              SELECT o.code, o.parent FROM org_unit o JOIN up ON o.code = up.parent
          )
          SELECT code FROM up WHERE parent IS NULL
      ) d ON true
     WHERE m.n IS NOT NULL AND u.level <> 'district'
       AND NOT EXISTS (SELECT 1 FROM gd_geo_after a WHERE a.code = d.code)
    HAVING count(*) > 0;
    IF unchecked IS NOT NULL THEN
        RAISE WARNING '%', unchecked;
    END IF;

    INSERT INTO unit_boundary AS b (unit, geom, updated_at)
    SELECT code, geom, now()
      FROM gd_geo_after
     WHERE n IS NOT NULL
     ORDER BY n
    ON CONFLICT (unit) DO UPDATE
       SET geom = excluded.geom, updated_at = excluded.updated_at
     -- an unchanged polygon is not rewritten, and keeps its updated_at
     WHERE NOT ST_OrderingEquals(b.geom, excluded.geom);

    DELETE FROM import_unit_boundary;
    DROP TABLE pg_temp.gd_stage_boundary;
    DROP TABLE pg_temp.gd_geo_after;
    RETURN n_rows;
END
$fn$;

-- The number a coordinate field spells (plain decimal, optional sign and
-- fraction, surrounding blanks allowed), or NULL.
CREATE FUNCTION gd_import_degrees(field text) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT CASE WHEN btrim(field) ~ '^[+-]?[0-9]{1,18}([.][0-9]{1,18})?$'
                THEN btrim(field)::double precision END
$fn$;

-- Import the staged addresses (import_address_point). Returns how many rows
-- the file had. Raises (and changes nothing) when any row is bad; warns
-- about points that no grid polygon holds (the broker cannot place them).
CREATE FUNCTION gd_import_addresses() RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    tol       constant double precision := gd_geo_tolerance();
    problems  text[];
    n_rows    integer;
    from_json boolean;
    district  text;
    outline   geometry;
    outside   text;
BEGIN
    PERFORM pg_advisory_xact_lock(7347002);

    SELECT count(*), coalesce(bool_or(feature), false) INTO n_rows, from_json FROM import_address_point;
    IF n_rows > gd_address_max_rows() THEN
        PERFORM gd_import_refuse('address',
            ARRAY[format('the file has %s rows; at most %s are allowed in one import (split it)',
                         n_rows, gd_address_max_rows())],
            'Fix the file and import it again.');
    END IF;

    IF to_regclass('pg_temp.gd_stage_address') IS NOT NULL THEN
        DROP TABLE pg_temp.gd_stage_address;
    END IF;
    CREATE TEMP TABLE gd_stage_address ON COMMIT DROP AS
    SELECT a.*,
           CASE WHEN from_json THEN format('feature %s', n) ELSE format('line %s', n + 1) END AS label
      FROM (
        SELECT row_number() OVER (ORDER BY line_seq) AS n,
               nullif(btrim(road), '') AS road_text,
               nullif(btrim(number), '') AS number_text,
               nullif(gd_address_norm(road), '') AS road,
               nullif(gd_address_norm(number), '') AS number,
               nullif(btrim(lon), '') AS lon_text,
               nullif(btrim(lat), '') AS lat_text,
               gd_import_degrees(lon) AS lon,
               gd_import_degrees(lat) AS lat,
               coalesce(btrim(label), '') AS addr_label,
               nullif(problem, '') AS problem
          FROM import_address_point) a;

    -- The district's polygon, when the tree has exactly one district with one.
    SELECT b.unit, b.geom INTO district, outline
      FROM unit_boundary b JOIN org_unit u ON u.code = b.unit
     WHERE u.level = 'district' AND (SELECT count(*) FROM org_unit WHERE level = 'district') = 1;

    WITH s AS (
        SELECT s.*, min(s.n) OVER w AS first_n, first_value(s.label) OVER w AS first_label,
               CASE WHEN s.lon BETWEEN -180 AND 180 AND s.lat BETWEEN -90 AND 90
                    THEN ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326) END AS geom
          FROM gd_stage_address s
        WINDOW w AS (PARTITION BY s.road, s.number ORDER BY s.n)
    ),
    problem(n, label, road, number, what) AS (
        SELECT n, label, road_text, number_text, problem FROM s WHERE problem IS NOT NULL
        UNION ALL
        SELECT n, label, road_text, number_text,
               CASE WHEN road_text IS NULL THEN 'road is empty'
                    ELSE 'road is only blanks' END
          FROM s WHERE road IS NULL AND problem IS NULL
        UNION ALL
        SELECT n, label, road_text, number_text,
               CASE WHEN number_text IS NULL THEN 'number is empty'
                    ELSE 'number is only blanks' END
          FROM s WHERE number IS NULL AND problem IS NULL
        UNION ALL
        SELECT n, label, road_text, number_text,
               format('road is %s characters long, at most 200 are allowed', length(road_text))
          FROM s WHERE length(road_text) > 200
        UNION ALL
        SELECT n, label, road_text, number_text,
               format('number is %s characters long, at most 200 are allowed', length(number_text))
          FROM s WHERE length(number_text) > 200
        UNION ALL
        SELECT n, label, road_text, number_text,
               format('label is %s characters long, at most 200 are allowed', length(addr_label))
          FROM s WHERE length(addr_label) > 200
        UNION ALL
        SELECT n, label, road_text, number_text,
               format('lon %L is not a decimal number of degrees (e.g. 106.5391)',
                      coalesce(lon_text, ''))
          FROM s WHERE lon IS NULL AND problem IS NULL
        UNION ALL
        SELECT n, label, road_text, number_text,
               format('lat %L is not a decimal number of degrees (e.g. 29.4011)',
                      coalesce(lat_text, ''))
          FROM s WHERE lat IS NULL AND problem IS NULL
        UNION ALL
        SELECT n, label, road_text, number_text,
               format('coordinates out of range: lon %s, lat %s; longitude must be within ±180 '
                      'and latitude within ±90 (lon comes first)', lon, lat)
          FROM s WHERE lon IS NOT NULL AND lat IS NOT NULL AND geom IS NULL
        UNION ALL
        SELECT n, label, road_text, number_text,
               format('duplicate address, already in %s (addresses are compared in their '
                      'normalised form %s %s)',
                      first_label, road, number)
          FROM s WHERE road IS NOT NULL AND number IS NOT NULL AND n > first_n
        UNION ALL
        SELECT n, label, road_text, number_text,
               format('lies outside the district %s''s polygon, %s m away from it (tolerance %s '
                      'degrees)', district,
                      round(ST_Distance(geom::geography, outline::geography)), tol)
          FROM s
         WHERE district IS NOT NULL AND geom IS NOT NULL
           AND NOT ST_DWithin(geom, outline, tol)
    )
    SELECT array_agg(format('%s%s: %s', label,
                            CASE WHEN road IS NOT NULL OR number IS NOT NULL
                                 THEN format(' (%s)', concat_ws(' ', gd_geo_cut(road), gd_geo_cut(number)))
                                 ELSE '' END,
                            what)
                     ORDER BY n, what)
      INTO problems
      FROM problem;

    PERFORM gd_import_refuse('address', problems,
        CASE WHEN from_json
             THEN 'Features count from 1 in the order of the file. Fix the file and import it again.'
             ELSE 'Line numbers count the CSV header as line 1. Fix the file and import it again.'
        END);

    SELECT format('%s addresses lie in no grid''s polygon, so the broker cannot place them: %s%s',
                  count(*), string_agg(label, ', ' ORDER BY n) FILTER (WHERE k <= 10),
                  CASE WHEN count(*) > 10 THEN ', ...' ELSE '' END)
      INTO outside
      FROM (SELECT s.*, row_number() OVER (ORDER BY n) AS k
              FROM gd_stage_address s
             WHERE EXISTS (SELECT 1 FROM unit_boundary b JOIN org_unit u ON u.code = b.unit
                            WHERE u.level = 'grid')
               AND NOT EXISTS (SELECT 1 FROM unit_boundary b JOIN org_unit u ON u.code = b.unit
                                WHERE u.level = 'grid'
                                  AND ST_Intersects(b.geom, ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326)))) o
    HAVING count(*) > 0;
    IF outside IS NOT NULL THEN
        RAISE WARNING '%', outside;
    END IF;

    INSERT INTO address_point AS t (road, number, label, geom, updated_at)
    SELECT road, number, addr_label, ST_SetSRID(ST_MakePoint(lon, lat), 4326), now()
      FROM gd_stage_address
     ORDER BY n
    ON CONFLICT (road, number) DO UPDATE
       SET label = excluded.label, geom = excluded.geom, updated_at = excluded.updated_at
     WHERE (t.label, ST_X(t.geom), ST_Y(t.geom))
           IS DISTINCT FROM (excluded.label, ST_X(excluded.geom), ST_Y(excluded.geom));

    DELETE FROM import_address_point;
    DROP TABLE pg_temp.gd_stage_address;
    RETURN n_rows;
END
$fn$;

INSERT INTO schema_version (version, name) VALUES (8, 'geo_import');
END
$migration$;

COMMIT;
