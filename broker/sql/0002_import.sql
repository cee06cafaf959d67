-- 0002_import.sql: CSV import of the org tree, category catalogue and calendar.
--
-- An import is one transaction (deploy/import-csv.sh runs it so):
--   1. \copy the CSV into a staging table below (every column is text, so
--      COPY only fails on the CSV's shape, never on a value);
--   2. SELECT gd_import_org_units() / gd_import_categories() /
--      gd_import_calendar(): validate every staged row, refuse the whole file
--      with one error listing each bad line, or upsert every row and empty
--      the staging tables.
-- A refused import raises, so the transaction rolls back and nothing is
-- changed, staged rows included. Imports only insert or update: an org unit,
-- category or calendar day missing from a file stays as it is (incidents and
-- the event log refer to unit and category codes).
--
-- Line numbers in error messages are CSV lines counting the header as line 1
-- (a quoted field spanning several lines makes them record numbers). They come
-- from line_seq, filled in COPY order; load the staging tables with an explicit
-- column list that leaves line_seq out.
--
-- Staged rows are visible only to the transaction that staged them until it
-- commits, and a successful import deletes them before commit, so concurrent
-- imports never see each other's files; the import functions also serialise
-- on an advisory lock so that two files upserting the same units cannot
-- interleave their checks and writes.

BEGIN;
SELECT pg_advisory_xact_lock(7347001);

DO $migration$
BEGIN
IF EXISTS (SELECT 1 FROM schema_version WHERE version = 2) THEN
    RETURN;
END IF;

-- Staging tables. UNLOGGED: their rows live for one transaction, so they need
-- no WAL and no crash safety.
CREATE UNLOGGED TABLE import_org_unit (
    line_seq   bigint GENERATED ALWAYS AS IDENTITY,
    code       text,
    name       text,
    level      text,
    kind       text,
    parent     text,
    households text
);
CREATE UNLOGGED TABLE import_category (
    line_seq         bigint GENERATED ALWAYS AS IDENTITY,
    code             text,
    name             text,
    sector           text,
    admitted_level   text,
    default_priority text,
    group_name       text
);
CREATE UNLOGGED TABLE import_category_sla (
    line_seq        bigint GENERATED ALWAYS AS IDENTITY,
    category        text,
    priority        text,
    basis           text,
    sign_limit_s    text,
    resolve_limit_s text,
    warn_percent    text,
    max_extension_s text
);
CREATE UNLOGGED TABLE import_calendar_day (
    line_seq bigint GENERATED ALWAYS AS IDENTITY,
    day      text,
    working  text,
    name     text
);

-- The integer a CSV field spells (surrounding blanks allowed), or NULL when
-- it is not a whole number in integer range. Callers test for empty fields
-- first, so NULL here always means "not a number".
CREATE FUNCTION gd_import_int(field text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT CASE
        WHEN btrim(field) ~ '^[+-]?[0-9]{1,10}$'
             AND btrim(field)::bigint BETWEEN -2147483648 AND 2147483647
        THEN btrim(field)::integer
    END
$fn$;

-- The date a CSV field spells as YYYY-MM-DD, or NULL when it is not a real
-- calendar date in that form (2026-02-30 is refused, 2026-2-3 too: one
-- spelling keeps files diffable and unambiguous).
CREATE FUNCTION gd_import_date(field text) RETURNS date
LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    IF btrim(field) !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN
        RETURN NULL;
    END IF;
    -- YYYY-MM-DD is read as year-month-day whatever DateStyle says.
    RETURN btrim(field)::date;
EXCEPTION WHEN data_exception THEN
    RETURN NULL;  -- 2026-02-30, 2026-13-01 ...
END
$fn$;

-- Refuse an import when PROBLEMS (one "line N (code X): what is wrong" entry
-- per problem, in file order) is not empty; return quietly otherwise. The
-- primary message carries the first problem so that a one-line error display
-- still shows something actionable; DETAIL lists up to 50 of them.
CREATE FUNCTION gd_import_refuse(what text, problems text[]) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    n     constant integer := coalesce(cardinality(problems), 0);
    shown constant integer := 50;
BEGIN
    IF n = 0 THEN
        RETURN;
    END IF;
    -- RAISE refuses a NULL option, hence two statements.
    IF n = 1 THEN
        RAISE EXCEPTION USING
            ERRCODE = 'data_exception',
            MESSAGE = format('%s import refused, nothing was changed: %s', what, problems[1]),
            HINT = 'Line numbers count the CSV header as line 1. Fix the file and import it again.';
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = 'data_exception',
        MESSAGE = format('%s import refused, nothing was changed: %s (%s problems in all, see DETAIL)',
                         what, problems[1], n),
        DETAIL = array_to_string(problems[1:shown], E'\n')
                 || CASE WHEN n > shown THEN format(E'\n... and %s more', n - shown) ELSE '' END,
        HINT = 'Line numbers count the CSV header as line 1. Fix the file and import it again.';
END
$fn$;

-- Depth of an org level in the tree, NULL for an unknown level. A unit's
-- parent must be exactly one level up.
CREATE FUNCTION gd_org_level_depth(level text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT CASE level
        WHEN 'district' THEN 0 WHEN 'town' THEN 1 WHEN 'community' THEN 2
        WHEN 'grid' THEN 3 WHEN 'micro_grid' THEN 4
    END
$fn$;

CREATE FUNCTION gd_org_parent_level(level text) RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT CASE level
        WHEN 'town' THEN 'district' WHEN 'community' THEN 'town'
        WHEN 'grid' THEN 'community' WHEN 'micro_grid' THEN 'grid'
    END
$fn$;

-- Import the staged org units (import_org_unit). Returns how many rows the
-- file had. Parents may come after their children in the file or already be
-- in org_unit; units are written parents first. Raises (and changes nothing)
-- when any row is bad.
CREATE FUNCTION gd_import_org_units() RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    problems text[];
    n_rows   integer;
    d        integer;
BEGIN
    PERFORM pg_advisory_xact_lock(7347002);

    -- Normalised rows: blanks trimmed, empty fields NULL, line numbers.
    IF to_regclass('pg_temp.gd_stage_org') IS NOT NULL THEN  -- called twice in one transaction
        DROP TABLE pg_temp.gd_stage_org;
    END IF;
    CREATE TEMP TABLE gd_stage_org ON COMMIT DROP AS
    SELECT row_number() OVER (ORDER BY line_seq) + 1 AS line,
           nullif(btrim(code), '') AS code,
           nullif(btrim(name), '') AS name,
           nullif(btrim(level), '') AS level,
           coalesce(nullif(btrim(kind), ''), 'regular') AS kind,
           nullif(btrim(parent), '') AS parent,
           nullif(btrim(households), '') AS households_text,
           gd_import_int(households) AS households
      FROM import_org_unit;
    SELECT count(*) INTO n_rows FROM gd_stage_org;

    WITH s AS (
        SELECT s.*,
               gd_org_level_depth(s.level) AS depth,
               min(s.line) OVER (PARTITION BY s.code) AS first_line
          FROM gd_stage_org s
    ),
    -- The level each referenced parent will have after the import: its row
    -- in this file if there is one (the first, should the code repeat), else
    -- its row in org_unit.
    parent_of AS (
        SELECT s.line,
               coalesce(f.level, u.level) AS level,
               (f.code IS NOT NULL OR u.code IS NOT NULL) AS known
          FROM s
          LEFT JOIN s f ON f.code = s.parent AND f.line = f.first_line
          LEFT JOIN org_unit u ON u.code = s.parent
         WHERE s.parent IS NOT NULL
    ),
    problem(line, code, what) AS (
        SELECT line, code, 'code is empty' FROM s WHERE code IS NULL
        UNION ALL
        SELECT line, code, 'code is not valid: use 1-32 characters from 0-9 A-Z a-z _ -'
          FROM s WHERE code !~ '^[0-9A-Za-z_-]{1,32}$'
        UNION ALL
        SELECT line, code, format('duplicate code, already on line %s', first_line)
          FROM s WHERE line > first_line
        UNION ALL
        SELECT line, code, 'name is empty' FROM s WHERE name IS NULL
        UNION ALL
        SELECT line, code, format('name is %s characters long, at most 200 are allowed', length(name))
          FROM s WHERE length(name) > 200
        UNION ALL
        SELECT line, code, format('unknown level %L (expected district, town, community, grid or micro_grid)',
                                  coalesce(level, ''))
          FROM s WHERE depth IS NULL
        UNION ALL
        SELECT line, code, format('unknown kind %L (expected regular or special; empty means regular)', kind)
          FROM s WHERE kind NOT IN ('regular', 'special')
        UNION ALL
        SELECT line, code, format('kind special (专属网格) is only for grids, this unit is a %s', level)
          FROM s WHERE kind = 'special' AND depth IS NOT NULL AND level <> 'grid'
        UNION ALL
        SELECT line, code, format('households %L is not a whole number of 0 or more', households_text)
          FROM s WHERE households_text IS NOT NULL AND coalesce(households < 0, true)
        UNION ALL
        SELECT line, code, format('a district has no parent, but parent is %L', parent)
          FROM s WHERE level = 'district' AND parent IS NOT NULL
        UNION ALL
        SELECT line, code, format('parent is empty; a %s''s parent must be a %s', level, gd_org_parent_level(level))
          FROM s WHERE depth > 0 AND parent IS NULL
        UNION ALL
        SELECT s.line, s.code, format('parent %L is neither in this file nor in org_unit', s.parent)
          FROM s JOIN parent_of p USING (line)
         WHERE s.depth > 0 AND NOT p.known
        UNION ALL
        -- A parent whose own level is unknown has its own problem reported.
        SELECT s.line, s.code, format('parent %L is a %s, but a %s''s parent must be a %s',
                                      s.parent, p.level, s.level, gd_org_parent_level(s.level))
          FROM s JOIN parent_of p USING (line)
         WHERE s.depth > 0 AND p.known AND gd_org_level_depth(p.level) IS NOT NULL
           AND p.level <> gd_org_parent_level(s.level)
        UNION ALL
        -- Changing an existing unit's level must not strand the units already
        -- under it (those this file does not move elsewhere).
        SELECT s.line, s.code, format('level would change to %s, but existing unit %s (a %s) under it needs a parent that is a %s',
                                      s.level, c.code, c.level, gd_org_parent_level(c.level))
          FROM s
          JOIN org_unit c ON c.parent = s.code
         WHERE s.line = s.first_line AND s.depth IS NOT NULL
           AND s.level <> gd_org_parent_level(c.level)
           AND NOT EXISTS (SELECT 1 FROM s moved WHERE moved.code = c.code)
    )
    SELECT array_agg(format('line %s%s: %s', line,
                            CASE WHEN code IS NOT NULL THEN format(' (code %s)', code) ELSE '' END,
                            what)
                     ORDER BY line)
      INTO problems
      FROM problem;

    PERFORM gd_import_refuse('org unit', problems);

    -- Parents first, one level per statement, so that every FK check finds
    -- its parent already written whatever the file's order.
    FOR d IN 0..4 LOOP
        INSERT INTO org_unit AS u (code, name, level, kind, parent, households)
        SELECT s.code, s.name, s.level, s.kind, s.parent, s.households
          FROM gd_stage_org s
         WHERE gd_org_level_depth(s.level) = d
         ORDER BY s.line
        ON CONFLICT (code) DO UPDATE
           SET name = excluded.name, level = excluded.level, kind = excluded.kind,
               parent = excluded.parent, households = excluded.households
         -- an unchanged row is not rewritten: re-importing a file costs no
         -- dead tuples
         WHERE (u.name, u.level, u.kind, u.parent, u.households)
               IS DISTINCT FROM
               (excluded.name, excluded.level, excluded.kind, excluded.parent, excluded.households);
    END LOOP;

    DELETE FROM import_org_unit;
    DROP TABLE pg_temp.gd_stage_org;
    RETURN n_rows;
END
$fn$;

-- Import the staged categories (import_category) and their time limits
-- (import_category_sla); either may be empty. Returns how many category rows
-- were imported. An SLA row's category must be in the same import or already
-- in the catalogue. Raises (and changes nothing) when any row is bad; warns
-- when an imported category has no time limit for its default priority.
CREATE FUNCTION gd_import_categories() RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    problems text[];
    n_cat    integer;
    missing  text;
BEGIN
    PERFORM pg_advisory_xact_lock(7347002);

    IF to_regclass('pg_temp.gd_stage_category') IS NOT NULL THEN  -- called twice in one transaction
        DROP TABLE pg_temp.gd_stage_category;
    END IF;
    CREATE TEMP TABLE gd_stage_category ON COMMIT DROP AS
    SELECT row_number() OVER (ORDER BY line_seq) + 1 AS line,
           nullif(btrim(code), '') AS code,
           nullif(btrim(name), '') AS name,
           nullif(btrim(sector), '') AS sector,
           nullif(btrim(admitted_level), '') AS admitted_level,
           coalesce(nullif(btrim(default_priority), ''), 'normal') AS default_priority,
           coalesce(btrim(group_name), '') AS group_name
      FROM import_category;
    SELECT count(*) INTO n_cat FROM gd_stage_category;

    IF to_regclass('pg_temp.gd_stage_sla') IS NOT NULL THEN  -- called twice in one transaction
        DROP TABLE pg_temp.gd_stage_sla;
    END IF;
    CREATE TEMP TABLE gd_stage_sla ON COMMIT DROP AS
    SELECT row_number() OVER (ORDER BY line_seq) + 1 AS line,
           nullif(btrim(category), '') AS category,
           nullif(btrim(priority), '') AS priority,
           coalesce(nullif(btrim(basis), ''), 'wall') AS basis,
           nullif(btrim(sign_limit_s), '') AS sign_text,
           nullif(btrim(resolve_limit_s), '') AS resolve_text,
           coalesce(nullif(btrim(warn_percent), ''), '80') AS warn_text,
           coalesce(nullif(btrim(max_extension_s), ''), '0') AS ext_text
      FROM import_category_sla;

    WITH c AS (
        SELECT c.*, min(c.line) OVER (PARTITION BY c.code) AS first_line
          FROM gd_stage_category c
    ),
    problem(line, code, what) AS (
        SELECT line, code, 'code is empty' FROM c WHERE code IS NULL
        UNION ALL
        SELECT line, code, 'code is not valid: use 1-32 characters from 0-9 A-Z a-z _ . -'
          FROM c WHERE code !~ '^[0-9A-Za-z_.-]{1,32}$'
        UNION ALL
        SELECT line, code, format('duplicate code, already on line %s', first_line)
          FROM c WHERE line > first_line
        UNION ALL
        SELECT line, code, 'name is empty' FROM c WHERE name IS NULL
        UNION ALL
        SELECT line, code, format('name is %s characters long, at most 200 are allowed', length(name))
          FROM c WHERE length(name) > 200
        UNION ALL
        SELECT line, code, format('unknown sector %L (expected party 党的建设, economy 经济发展, '
                                  'livelihood 民生服务 or safety 平安法治)', coalesce(sector, ''))
          FROM c WHERE sector IS NULL OR sector NOT IN ('party', 'economy', 'livelihood', 'safety')
        UNION ALL
        SELECT line, code, format('unknown admitted_level %L (expected grid, community, town or district)',
                                  coalesce(admitted_level, ''))
          FROM c WHERE admitted_level IS NULL
                    OR admitted_level NOT IN ('grid', 'community', 'town', 'district')
        UNION ALL
        SELECT line, code, format('unknown default_priority %L (expected emergency, urgent or normal; '
                                  'empty means normal)', default_priority)
          FROM c WHERE default_priority NOT IN ('emergency', 'urgent', 'normal')
    )
    SELECT array_agg(format('categories line %s%s: %s', line,
                            CASE WHEN code IS NOT NULL THEN format(' (code %s)', code) ELSE '' END,
                            what)
                     ORDER BY line)
      INTO problems
      FROM problem;
    PERFORM gd_import_refuse('category', problems);

    WITH s AS (
        SELECT s.*,
               gd_import_int(s.sign_text) AS sign_s,
               gd_import_int(s.resolve_text) AS resolve_s,
               gd_import_int(s.warn_text) AS warn,
               gd_import_int(s.ext_text) AS ext,
               min(s.line) OVER (PARTITION BY s.category, s.priority) AS first_line
          FROM gd_stage_sla s
    ),
    problem(line, code, what) AS (
        SELECT line, category, 'category is empty' FROM s WHERE category IS NULL
        UNION ALL
        SELECT line, category, 'category is neither in this import nor in the category table'
          FROM s
         WHERE category IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM gd_stage_category c WHERE c.code = s.category)
           AND NOT EXISTS (SELECT 1 FROM category c WHERE c.code = s.category)
        UNION ALL
        SELECT line, category, format('unknown priority %L (expected emergency, urgent or normal)',
                                      coalesce(priority, ''))
          FROM s WHERE priority IS NULL OR priority NOT IN ('emergency', 'urgent', 'normal')
        UNION ALL
        SELECT line, category, format('duplicate row for priority %s, already on line %s', priority, first_line)
          FROM s WHERE line > first_line
        UNION ALL
        SELECT line, category, format('unknown basis %L (expected wall or working; empty means wall)', basis)
          FROM s WHERE basis NOT IN ('wall', 'working')
        UNION ALL
        SELECT line, category, format('sign_limit_s %L is not a positive whole number of seconds',
                                      coalesce(sign_text, ''))
          FROM s WHERE coalesce(sign_s <= 0, true)
        UNION ALL
        SELECT line, category, format('resolve_limit_s %L is not a positive whole number of seconds',
                                      coalesce(resolve_text, ''))
          FROM s WHERE coalesce(resolve_s <= 0, true)
        UNION ALL
        -- Signing for an item can never be due after it must be resolved.
        SELECT line, category, format('sign_limit_s %s is longer than resolve_limit_s %s', sign_s, resolve_s)
          FROM s WHERE sign_s > 0 AND resolve_s > 0 AND sign_s > resolve_s
        UNION ALL
        SELECT line, category, format('warn_percent %L is not a whole number from 1 to 99 '
                                      '(empty means 80)', warn_text)
          FROM s WHERE coalesce(warn NOT BETWEEN 1 AND 99, true)
        UNION ALL
        SELECT line, category, format('max_extension_s %L is not a whole number of seconds, 0 or more '
                                      '(empty means 0: no extension)', ext_text)
          FROM s WHERE coalesce(ext < 0, true)
    )
    SELECT array_agg(format('SLA line %s%s: %s', line,
                            CASE WHEN code IS NOT NULL THEN format(' (category %s)', code) ELSE '' END,
                            what)
                     ORDER BY line)
      INTO problems
      FROM problem;
    PERFORM gd_import_refuse('category SLA', problems);

    INSERT INTO category AS t (code, name, sector, admitted_level, default_priority, group_name)
    SELECT code, name, sector, admitted_level, default_priority, group_name
      FROM gd_stage_category
     ORDER BY line
    ON CONFLICT (code) DO UPDATE
       SET name = excluded.name, sector = excluded.sector, admitted_level = excluded.admitted_level,
           default_priority = excluded.default_priority, group_name = excluded.group_name
     WHERE (t.name, t.sector, t.admitted_level, t.default_priority, t.group_name)
           IS DISTINCT FROM
           (excluded.name, excluded.sector, excluded.admitted_level, excluded.default_priority,
            excluded.group_name);

    INSERT INTO category_sla AS t (category, priority, basis, sign_limit_s, resolve_limit_s,
                                   warn_percent, max_extension_s)
    SELECT category, priority, basis, gd_import_int(sign_text), gd_import_int(resolve_text),
           gd_import_int(warn_text), gd_import_int(ext_text)
      FROM gd_stage_sla
     ORDER BY line
    ON CONFLICT (category, priority) DO UPDATE
       SET basis = excluded.basis, sign_limit_s = excluded.sign_limit_s,
           resolve_limit_s = excluded.resolve_limit_s, warn_percent = excluded.warn_percent,
           max_extension_s = excluded.max_extension_s
     WHERE (t.basis, t.sign_limit_s, t.resolve_limit_s, t.warn_percent, t.max_extension_s)
           IS DISTINCT FROM
           (excluded.basis, excluded.sign_limit_s, excluded.resolve_limit_s, excluded.warn_percent,
            excluded.max_extension_s);

    -- Not an error: categories and their limits may come in separate imports.
    -- Until the limits arrive the broker has no deadline for such items.
    SELECT string_agg(c.code, ', ' ORDER BY c.line)
      INTO missing
      FROM gd_stage_category c
     WHERE NOT EXISTS (SELECT 1 FROM category_sla l
                        WHERE l.category = c.code AND l.priority = c.default_priority);
    IF missing IS NOT NULL THEN
        RAISE WARNING 'these categories have no time limits (category_sla) for their default priority yet: %',
            missing;
    END IF;

    DELETE FROM import_category;
    DELETE FROM import_category_sla;
    DROP TABLE pg_temp.gd_stage_category;
    DROP TABLE pg_temp.gd_stage_sla;
    RETURN n_cat;
END
$fn$;

-- Import the staged calendar days (import_calendar_day). Returns how many
-- rows the file had. Raises (and changes nothing) when any row is bad; warns
-- about a working day on Monday-Friday, which is what every such day is
-- anyway (调休 make-up days fall on weekends, so it is most likely a wrong
-- date), but not an error: it is also how a holiday stored by mistake is
-- turned back into a working day, since imports never delete.
CREATE FUNCTION gd_import_calendar() RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    problems text[];
    n_rows   integer;
    odd      text;
BEGIN
    PERFORM pg_advisory_xact_lock(7347002);

    IF to_regclass('pg_temp.gd_stage_calendar') IS NOT NULL THEN  -- called twice in one transaction
        DROP TABLE pg_temp.gd_stage_calendar;
    END IF;
    CREATE TEMP TABLE gd_stage_calendar ON COMMIT DROP AS
    SELECT row_number() OVER (ORDER BY line_seq) + 1 AS line,
           nullif(btrim(day), '') AS day_text,
           gd_import_date(day) AS day,
           nullif(lower(btrim(working)), '') AS working_text,
           CASE
               WHEN lower(btrim(working)) IN ('true', 't', 'yes', 'y', '1', 'on') THEN true
               WHEN lower(btrim(working)) IN ('false', 'f', 'no', 'n', '0', 'off') THEN false
           END AS working,
           coalesce(btrim(name), '') AS name
      FROM import_calendar_day;
    SELECT count(*) INTO n_rows FROM gd_stage_calendar;

    WITH s AS (
        SELECT s.*, min(s.line) OVER (PARTITION BY s.day) AS first_line
          FROM gd_stage_calendar s
    ),
    problem(line, day, what) AS (
        SELECT line, day_text, 'day is empty' FROM s WHERE day_text IS NULL
        UNION ALL
        SELECT line, day_text, 'day is not a date written YYYY-MM-DD'
          FROM s WHERE day_text IS NOT NULL AND day IS NULL
        UNION ALL
        SELECT line, day_text, format('duplicate day, already on line %s', first_line)
          FROM s WHERE day IS NOT NULL AND line > first_line
        UNION ALL
        SELECT line, day_text, format('working %L is not true or false (also accepted: t/f, yes/no, '
                                      'y/n, 1/0, on/off)', coalesce(working_text, ''))
          FROM s WHERE working IS NULL
    )
    SELECT array_agg(format('line %s%s: %s', line,
                            CASE WHEN day IS NOT NULL THEN format(' (day %s)', day) ELSE '' END,
                            what)
                     ORDER BY line)
      INTO problems
      FROM problem;
    PERFORM gd_import_refuse('calendar', problems);

    SELECT string_agg(format('line %s (%s, %s)', line, day, to_char(day, 'FMDay')), ', ' ORDER BY line)
      INTO odd
      FROM gd_stage_calendar
     WHERE working AND extract(isodow FROM day) <= 5;
    IF odd IS NOT NULL THEN
        RAISE WARNING 'working days on Monday-Friday are working days anyway; check the dates: %', odd;
    END IF;

    INSERT INTO calendar_day AS t (day, working, name)
    SELECT day, working, name
      FROM gd_stage_calendar
     ORDER BY line
    ON CONFLICT (day) DO UPDATE
       SET working = excluded.working, name = excluded.name
     WHERE (t.working, t.name) IS DISTINCT FROM (excluded.working, excluded.name);

    DELETE FROM import_calendar_day;
    DROP TABLE pg_temp.gd_stage_calendar;
    RETURN n_rows;
END
$fn$;

INSERT INTO schema_version (version, name) VALUES (2, 'import');
END
$migration$;

COMMIT;
