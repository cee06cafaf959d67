-- 0003_working_hours.sql: CSV import of the working hours; warning instants and auto-approved extensions.
--
-- Working hours are imported like the files of 0002_import.sql (\copy into
-- import_working_hours, then SELECT gd_import_working_hours() in the same
-- transaction), with one difference: the periods of a working day are one
-- set, so the file replaces them all. A period missing from the file is
-- deleted; an empty file is refused (a day without working time would make
-- every working-time deadline unreachable).
--
-- Also adds what the SLA clocks store per incident (the instants at which
-- the sign-for and resolve warnings fall due; the broker writes them) and,
-- per category and priority, how much extension is approved without the
-- level above. ADD COLUMN IF NOT EXISTS: 0004_sla.sql adds the incident
-- columns too, for databases migrated before this file existed.

BEGIN;
SELECT pg_advisory_xact_lock(7347001);

DO $migration$
BEGIN
IF EXISTS (SELECT 1 FROM schema_version WHERE version = 3) THEN
    RETURN;
END IF;

ALTER TABLE incident ADD COLUMN IF NOT EXISTS sign_warn timestamptz;
ALTER TABLE incident ADD COLUMN IF NOT EXISTS resolve_warn timestamptz;

-- Extensions (延期) of up to auto_extension_s seconds are approved
-- automatically; longer ones, up to max_extension_s, need the level above.
-- max_extension_s caps every extension, so an auto_extension_s above it
-- approves at most max_extension_s.
ALTER TABLE category_sla ADD COLUMN IF NOT EXISTS auto_extension_s integer NOT NULL DEFAULT 0
    CHECK (auto_extension_s >= 0);

-- Staging table, as in 0002_import.sql: every column is text.
CREATE UNLOGGED TABLE import_working_hours (
    line_seq bigint GENERATED ALWAYS AS IDENTITY,
    starts   text,
    ends     text
);

-- The time of day a CSV field spells as H:MM or HH:MM (00:00-23:59, and
-- 24:00, the midnight that ends a day, when end_of_day), or NULL. Whole
-- minutes only: that is the calendar's resolution.
CREATE FUNCTION gd_import_time(field text, end_of_day boolean) RETURNS time
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT CASE
        WHEN btrim(field) ~ '^([01]?[0-9]|2[0-3]):[0-5][0-9]$'
             OR (end_of_day AND btrim(field) = '24:00')
        THEN btrim(field)::time
    END
$fn$;

-- Replace the working periods (working_hours) with the staged ones
-- (import_working_hours). Returns how many periods the file had. Raises
-- (and changes nothing) when the file is empty, has more than 24 periods,
-- or any row is bad: a time that is not H:MM, an end not after its start,
-- periods that overlap (touching is fine: 12:00-13:00 after 08:00-12:00).
CREATE FUNCTION gd_import_working_hours() RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    problems  text[];
    n_rows    integer;
    max_rows  constant integer := 24;  -- CALENDAR_MAX_PERIODS in broker/calendar.h
BEGIN
    PERFORM pg_advisory_xact_lock(7347002);

    IF to_regclass('pg_temp.gd_stage_hours') IS NOT NULL THEN  -- called twice in one transaction
        DROP TABLE pg_temp.gd_stage_hours;
    END IF;
    CREATE TEMP TABLE gd_stage_hours ON COMMIT DROP AS
    SELECT row_number() OVER (ORDER BY line_seq) + 1 AS line,
           nullif(btrim(starts), '') AS starts_text,
           nullif(btrim(ends), '') AS ends_text,
           gd_import_time(starts, false) AS starts,
           gd_import_time(ends, true) AS ends
      FROM import_working_hours;
    SELECT count(*) INTO n_rows FROM gd_stage_hours;

    WITH s AS (
        SELECT *, format('%s-%s', starts_text, ends_text) AS period FROM gd_stage_hours
    ),
    problem(line, period, what) AS (
        SELECT 1::bigint, NULL::text, 'the file has no periods; a working day needs at least one'
         WHERE n_rows = 0
        UNION ALL
        SELECT 1, NULL, format('the file has %s periods, at most %s are allowed', n_rows, max_rows)
         WHERE n_rows > max_rows
        UNION ALL
        SELECT line, period, format('starts %L is not a time of day written H:MM or HH:MM (00:00-23:59)',
                                    coalesce(starts_text, ''))
          FROM s WHERE starts IS NULL
        UNION ALL
        SELECT line, period, format('ends %L is not a time of day written H:MM or HH:MM (00:00-24:00)',
                                    coalesce(ends_text, ''))
          FROM s WHERE ends IS NULL
        UNION ALL
        SELECT line, period, format('ends %s is not after starts %s', ends_text, starts_text)
          FROM s WHERE ends <= starts
        UNION ALL
        SELECT b.line, b.period, format('overlaps line %s (%s)', a.line, a.period)
          FROM s a JOIN s b ON a.line < b.line
         WHERE a.starts < a.ends AND b.starts < b.ends
           AND a.starts < b.ends AND b.starts < a.ends
    )
    SELECT array_agg(format('line %s%s: %s', line,
                            CASE WHEN period IS NOT NULL THEN format(' (%s)', period) ELSE '' END,
                            what)
                     ORDER BY line)
      INTO problems
      FROM problem;
    PERFORM gd_import_refuse('working hours', problems);

    -- Replace the set; rows already as the file says are left alone, so
    -- re-importing a file writes nothing.
    DELETE FROM working_hours w
     WHERE NOT EXISTS (SELECT 1 FROM gd_stage_hours s WHERE s.starts = w.starts AND s.ends = w.ends);
    INSERT INTO working_hours (starts, ends)
    SELECT starts, ends
      FROM gd_stage_hours s
     WHERE NOT EXISTS (SELECT 1 FROM working_hours w WHERE w.starts = s.starts)
     ORDER BY starts;

    DELETE FROM import_working_hours;
    DROP TABLE pg_temp.gd_stage_hours;
    RETURN n_rows;
END
$fn$;

INSERT INTO schema_version (version, name) VALUES (3, 'working_hours');
END
$migration$;

COMMIT;
