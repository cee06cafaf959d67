-- 0007_geo.sql: org-unit boundaries and the address table (PostGIS), and where each incident was located.
--
-- Boundaries are data: one (multi)polygon per org unit in SRID 4326
-- (longitude, latitude; WGS 84), any level from the district down to the
-- micro-grid. The broker reads the grid and micro-grid polygons at start and
-- on SIGHUP to place a SUBMIT that carries a position and no grid code. The
-- address table maps a normalised road name and house number to a point,
-- which is then placed the same way.
--
-- Where an incident was placed, and how, is recorded on the incident and on
-- its first event: located_by is 'given' (the submitter named the unit),
-- 'position' (point in polygon), 'address' (address table, then point in
-- polygon), or '' (not located: the triage queue).
--
-- The extension needs a role that may create it (a superuser, or a DBA who
-- ran CREATE EXTENSION postgis beforehand, which this file then finds).

BEGIN;
SELECT pg_advisory_xact_lock(7347001);

CREATE EXTENSION IF NOT EXISTS postgis;

DO $migration$
BEGIN
IF EXISTS (SELECT 1 FROM schema_version WHERE version = 7) THEN
    RETURN;
END IF;

CREATE TABLE unit_boundary (
    unit       text PRIMARY KEY REFERENCES org_unit (code),
    geom       geometry(MultiPolygon, 4326) NOT NULL CHECK (ST_IsValid(geom) AND NOT ST_IsEmpty(geom)),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX unit_boundary_geom ON unit_boundary USING gist (geom);

-- The form an address is matched in; both sides of a match use it (the
-- broker applies the same rule in C to a SUBMIT's address). Exactly:
--   1. each full-width form U+FF01..U+FF5E becomes the ASCII character
--      U+0021..U+007E it stands for (Ｒｏａｄ１２ -> Road12);
--   2. the blanks U+0009..U+000D, U+0020, U+00A0 and U+3000 (the
--      ideographic space) are removed;
--   3. the ASCII letters A-Z become a-z.
-- Every other character is kept as it is (no Unicode normalisation, no case
-- folding outside ASCII), so the rule needs no tables beyond these ranges.
CREATE FUNCTION gd_address_norm(s text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$fn$ SELECT translate(translate(coalesce(s, ''),
                                '！＂＃＄％＆＇（）＊＋，－．／０１２３４５６７８９：；＜＝＞？＠ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ［＼］＾＿｀ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ｛｜｝～',
                                '!"#$%&''()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_`abcdefghijklmnopqrstuvwxyz{|}~'),
                      'ABCDEFGHIJKLMNOPQRSTUVWXYZ' || E'\t\n\x0b\f\r \u00a0\u3000',
                      'abcdefghijklmnopqrstuvwxyz') $fn$;

CREATE TABLE address_point (
    road       text NOT NULL CHECK (road <> '' AND road = gd_address_norm(road)),
    number     text NOT NULL CHECK (number <> '' AND number = gd_address_norm(number)),
    label      text NOT NULL DEFAULT '',
    geom       geometry(Point, 4326) NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (road, number)
);

ALTER TABLE incident ADD COLUMN located_by text NOT NULL DEFAULT ''
    CHECK (located_by IN ('', 'given', 'position', 'address'));
ALTER TABLE incident_event ADD COLUMN location_unit text NOT NULL DEFAULT '';
ALTER TABLE incident_event ADD COLUMN located_by text NOT NULL DEFAULT '';

INSERT INTO schema_version (version, name) VALUES (7, 'geo');
END
$migration$;

COMMIT;
