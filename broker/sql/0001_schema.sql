-- 0001_schema.sql: org tree, category catalogue, calendar, incidents and their event log.
--
-- Migrations are applied in file-name order, each in its own transaction,
-- by the broker at start-up or by deploy/migrate.sh. Each one records itself
-- in schema_version and does nothing when it is already recorded, so
-- applying them twice is harmless. Two processes migrating at once are
-- serialised by the advisory lock below.

BEGIN;
SELECT pg_advisory_xact_lock(7347001);

CREATE TABLE IF NOT EXISTS schema_version (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

DO $migration$
BEGIN
IF EXISTS (SELECT 1 FROM schema_version WHERE version = 1) THEN
    RETURN;
END IF;

-- Organisation tree: district -> town -> community -> grid -> micro-grid.
-- Special grids (a school, a hospital, an industrial park) are grid-level
-- units of kind 'special' hanging under a community.
CREATE TABLE org_unit (
    code       text PRIMARY KEY CHECK (code ~ '^[0-9A-Za-z_-]{1,32}$'),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    level      text NOT NULL CHECK (level IN ('district', 'town', 'community', 'grid', 'micro_grid')),
    kind       text NOT NULL DEFAULT 'regular' CHECK (kind IN ('regular', 'special')),
    parent     text REFERENCES org_unit (code),
    households integer CHECK (households >= 0),
    CHECK ((level = 'district') = (parent IS NULL)),
    CHECK (kind = 'regular' OR level = 'grid')
);
CREATE INDEX org_unit_parent ON org_unit (parent);

-- Category catalogue (事项清单). admitted_level is the lowest level an
-- item of this category may be pushed down to (the grid admission list is
-- the set of categories admitted at 'grid').
CREATE TABLE category (
    code             text PRIMARY KEY CHECK (code ~ '^[0-9A-Za-z_.-]{1,32}$'),
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    sector           text NOT NULL CHECK (sector IN ('party', 'economy', 'livelihood', 'safety')),
    admitted_level   text NOT NULL CHECK (admitted_level IN ('grid', 'community', 'town', 'district')),
    default_priority text NOT NULL DEFAULT 'normal' CHECK (default_priority IN ('emergency', 'urgent', 'normal')),
    group_name       text NOT NULL DEFAULT ''
);

-- Time limits per category and priority. Limits are in seconds of wall
-- clock ('wall') or of working time on the calendar ('working').
CREATE TABLE category_sla (
    category        text NOT NULL REFERENCES category (code) ON DELETE CASCADE,
    priority        text NOT NULL CHECK (priority IN ('emergency', 'urgent', 'normal')),
    basis           text NOT NULL DEFAULT 'wall' CHECK (basis IN ('wall', 'working')),
    sign_limit_s    integer NOT NULL CHECK (sign_limit_s > 0),
    resolve_limit_s integer NOT NULL CHECK (resolve_limit_s > 0),
    warn_percent    integer NOT NULL DEFAULT 80 CHECK (warn_percent BETWEEN 1 AND 99),
    max_extension_s integer NOT NULL DEFAULT 0 CHECK (max_extension_s >= 0),
    PRIMARY KEY (category, priority)
);

-- Working calendar: days that differ from the Monday-Friday rule
-- (public holidays, make-up working days 调休), and the working hours.
CREATE TABLE calendar_day (
    day     date PRIMARY KEY,
    working boolean NOT NULL,
    name    text NOT NULL DEFAULT ''
);
CREATE TABLE working_hours (
    starts time NOT NULL,
    ends   time NOT NULL CHECK (ends > starts),
    PRIMARY KEY (starts)
);

-- Incidents: the current projection of each incident's event log.
CREATE TABLE incident (
    id               bigint PRIMARY KEY,
    source           text NOT NULL,
    external_id      text NOT NULL,
    category         text NOT NULL DEFAULT '',
    priority         text NOT NULL CHECK (priority IN ('emergency', 'urgent', 'normal')),
    state            text NOT NULL CHECK (state IN ('RECEIVED', 'QUEUED', 'DELIVERED', 'SIGNED',
                                                    'IN_PROGRESS', 'RESOLVED', 'CLOSED')),
    version          integer NOT NULL CHECK (version >= 1),
    queue            text NOT NULL,
    owner_unit       text NOT NULL DEFAULT '',
    owner_level      text NOT NULL,
    location_unit    text NOT NULL DEFAULT '',
    address          text NOT NULL DEFAULT '',
    lat              double precision,
    lon              double precision,
    description      text NOT NULL DEFAULT '',
    reporter_name    text NOT NULL DEFAULT '',
    reporter_phone   text NOT NULL DEFAULT '',
    reporter_address text NOT NULL DEFAULT '',
    attachments      text[] NOT NULL DEFAULT '{}',
    reported_at      timestamptz,
    received_at      timestamptz NOT NULL,
    sign_due         timestamptz,
    resolve_due      timestamptz,
    attempts         integer NOT NULL DEFAULT 0,
    escalations      integer NOT NULL DEFAULT 0,
    flagged          boolean NOT NULL DEFAULT false,
    updated_at       timestamptz NOT NULL,
    UNIQUE (source, external_id)
);
CREATE INDEX incident_open ON incident (id) WHERE state <> 'CLOSED';
CREATE INDEX incident_received ON incident (received_at);

-- The append-only event log: one row per transition, version gap-free
-- per incident.
CREATE TABLE incident_event (
    incident_id bigint NOT NULL REFERENCES incident (id),
    version     integer NOT NULL CHECK (version >= 1),
    at          timestamptz NOT NULL,
    kind        text NOT NULL,
    from_state  text,
    to_state    text NOT NULL,
    queue       text NOT NULL DEFAULT '',
    owner_unit  text NOT NULL DEFAULT '',
    owner_level text NOT NULL DEFAULT '',
    actor       text NOT NULL DEFAULT '',
    note        text NOT NULL DEFAULT '',
    PRIMARY KEY (incident_id, version)
);
CREATE INDEX incident_event_at ON incident_event (at);

CREATE FUNCTION incident_event_append_only() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION 'incident_event is append-only (% refused)', TG_OP;
END
$fn$;
CREATE TRIGGER incident_event_append_only
    BEFORE UPDATE OR DELETE ON incident_event
    FOR EACH ROW EXECUTE FUNCTION incident_event_append_only();

-- Times travel from the broker as milliseconds since the Unix epoch; 0 means
-- "not set".
CREATE FUNCTION gd_ts(ms bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$fn$ SELECT CASE WHEN ms = 0 THEN NULL ELSE to_timestamp(ms / 1000.0) END $fn$;

CREATE FUNCTION gd_ms(t timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$fn$ SELECT coalesce((extract(epoch FROM t) * 1000)::bigint, 0) $fn$;

INSERT INTO schema_version (version, name) VALUES (1, 'schema');
END
$migration$;

COMMIT;
