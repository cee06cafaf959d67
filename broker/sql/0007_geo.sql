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

-- The form an address is matched in: NFKC (full-width digits and letters
-- become ASCII), lower case, blanks removed. Both sides of a match use it.
CREATE FUNCTION gd_address_norm(s text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$fn$ SELECT lower(regexp_replace(normalize(coalesce(s, ''), NFKC), '[[:space:]]+', '', 'g')) $fn$;

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
