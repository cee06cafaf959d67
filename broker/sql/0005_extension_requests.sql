-- 0005_extension_requests.sql: an extension asked beyond the automatic
-- limit waits for the level above; the requested new deadline is kept on
-- the incident until it is approved or denied.

BEGIN;
SELECT pg_advisory_xact_lock(7347001);

DO $migration$
BEGIN
IF EXISTS (SELECT 1 FROM schema_version WHERE version = 5) THEN
    RETURN;
END IF;

ALTER TABLE incident ADD COLUMN IF NOT EXISTS extension_pending timestamptz;

INSERT INTO schema_version (version, name) VALUES (5, 'extension requests');
END
$migration$;

COMMIT;
