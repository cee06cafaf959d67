-- 0009_hot_updates.sql: lifecycle updates of an incident touch no index (PostgreSQL HOT updates).
--
-- Every transition rewrites the incident's row (state, version, queue,
-- deadlines). PostgreSQL can keep the new version on the same page and
-- skip every index ("heap-only tuple") when no indexed column, and no
-- column of a partial index's predicate, changes value, and the page has
-- room. Before this migration the index of open incidents had the
-- predicate `state <> 'CLOSED'`, so each transition changed a predicate
-- column and wrote a new entry into all four indexes of the table.
--
-- Now that index's predicate is `is_open`, a stored generated column that
-- changes only when an incident is closed (or reopened), and the table
-- leaves a fifth of each page free for the new versions of its rows
-- (fillfactor 80; rows inserted before keep their pages as they are).
-- Recovery reads the open incidents through the new index (`WHERE is_open`).
--
-- Adding a stored generated column rewrites the table once, under an
-- exclusive lock: run it while the broker is stopped (gdctl migrate), as
-- every migration.

BEGIN;
SELECT pg_advisory_xact_lock(7347001);

DO $migration$
BEGIN
IF EXISTS (SELECT 1 FROM schema_version WHERE version = 9) THEN
    RETURN;
END IF;

ALTER TABLE incident ADD COLUMN IF NOT EXISTS is_open boolean NOT NULL
    GENERATED ALWAYS AS (state <> 'CLOSED') STORED;
DROP INDEX IF EXISTS incident_open;
CREATE INDEX incident_open ON incident (id) WHERE is_open;
ALTER TABLE incident SET (fillfactor = 80);

INSERT INTO schema_version (version, name) VALUES (9, 'hot_updates');
END
$migration$;

COMMIT;
