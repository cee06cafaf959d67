-- 0004_sla.sql: what the SLA stream needs stored: the warning instants of
-- the sign-for and resolve deadlines (the deadlines themselves are in 0001).
-- ADD COLUMN IF NOT EXISTS: other migrations may add the same columns.

BEGIN;
SELECT pg_advisory_xact_lock(7347001);

DO $migration$
BEGIN
IF EXISTS (SELECT 1 FROM schema_version WHERE version = 4) THEN
    RETURN;
END IF;

ALTER TABLE incident ADD COLUMN IF NOT EXISTS sign_warn timestamptz;
ALTER TABLE incident ADD COLUMN IF NOT EXISTS resolve_warn timestamptz;

INSERT INTO schema_version (version, name) VALUES (4, 'sla');
END
$migration$;

COMMIT;
