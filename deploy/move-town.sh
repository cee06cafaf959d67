#!/usr/bin/env bash
# Move a drained town's incidents and event logs from one shard's database to another's.
#
#   deploy/move-town.sh TOWN FROM_DSN TO_DSN
#
# TOWN is a 9-digit town code; an incident belongs to it when its unit code
# starts with it (the city configuration's rule). Every such incident on
# FROM must be CLOSED (refused otherwise: open ones are held by the broker).
# Both brokers must be stopped. Copies them to TO with new ids (ids are per
# database), skipping keys TO already has, then deletes from FROM those TO
# now holds. Safe to run again after a failure. Steps: deploy/README.md.
set -euo pipefail

usage()
{
    sed -n '3,10s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
    exit 2
}

(($# == 3)) || usage
town=$1 from=$2 to=$3
[[ $town =~ ^[0-9]{9}$ ]] || {
    echo "move-town.sh: town '$town': a town code is 9 digits" >&2
    exit 2
}

q()
{
    local dsn=$1
    shift
    psql -X -q -v ON_ERROR_STOP=1 -At -d "$dsn" -v town="$town" "$@"
}

# the same migrations on both sides: the rows copy column for column
vf=$(q "$from" -c "SELECT max(version) FROM schema_version")
vt=$(q "$to" -c "SELECT max(version) FROM schema_version")
[[ $vf == "$vt" ]] || {
    echo "move-town.sh: schema version $vf on FROM but $vt on TO: migrate both first" >&2
    exit 1
}

open=$(q "$from" <<'SQL'
SELECT count(*) FROM incident WHERE left(location_unit, 9) = :'town' AND state <> 'CLOSED';
SQL
)
if ((open > 0)); then
    echo "move-town.sh: $open incidents of town $town are not closed on FROM: drain them first" >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

q "$from" <<SQL
\copy (SELECT * FROM incident WHERE left(location_unit, 9) = '$town') TO '$tmp/incident'
\copy (SELECT e.* FROM incident_event e JOIN incident i ON i.id = e.incident_id WHERE left(i.location_unit, 9) = '$town') TO '$tmp/event'
SQL

# TO: new ids above every id in use, one transaction
q "$to" <<SQL
BEGIN;
CREATE TEMP TABLE mv_incident (LIKE incident) ON COMMIT DROP;
CREATE TEMP TABLE mv_event (LIKE incident_event) ON COMMIT DROP;
\copy mv_incident FROM '$tmp/incident'
\copy mv_event FROM '$tmp/event'
CREATE TEMP TABLE mv_map ON COMMIT DROP AS
SELECT m.id AS old_id,
       (SELECT coalesce(max(id), 0) FROM incident) + row_number() OVER (ORDER BY m.id) AS new_id
  FROM mv_incident m
 WHERE NOT EXISTS (SELECT 1 FROM incident i
                    WHERE i.source = m.source AND i.external_id = m.external_id);
-- every column PostgreSQL does not compute itself (is_open is generated)
SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) AS cols
  FROM pg_attribute
 WHERE attrelid = 'incident'::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
\gset
INSERT INTO incident (:cols)
SELECT :cols
  FROM (SELECT (jsonb_populate_record(NULL::incident,
                                      to_jsonb(m) || jsonb_build_object('id', p.new_id))).*
          FROM mv_incident m JOIN mv_map p ON p.old_id = m.id) r;
INSERT INTO incident_event
SELECT (jsonb_populate_record(NULL::incident_event,
                              to_jsonb(e) || jsonb_build_object('incident_id', p.new_id))).*
  FROM mv_event e JOIN mv_map p ON p.old_id = e.incident_id;
SELECT 'copied ' || count(*) || ' incidents to TO' FROM mv_map;
COMMIT;
\copy (SELECT source, external_id FROM incident WHERE left(location_unit, 9) = '$town') TO '$tmp/keys'
SQL

# FROM: delete what TO holds now (the event log is append-only for the
# broker; this maintenance step lifts that for its own transaction)
q "$from" <<SQL
BEGIN;
CREATE TEMP TABLE mv_keys (source text, external_id text) ON COMMIT DROP;
\copy mv_keys FROM '$tmp/keys'
CREATE TEMP TABLE mv_gone ON COMMIT DROP AS
SELECT i.id FROM incident i JOIN mv_keys k USING (source, external_id)
 WHERE left(i.location_unit, 9) = '$town' AND i.state = 'CLOSED';
ALTER TABLE incident_event DISABLE TRIGGER incident_event_append_only;
DELETE FROM incident_event WHERE incident_id IN (SELECT id FROM mv_gone);
DELETE FROM incident WHERE id IN (SELECT id FROM mv_gone);
ALTER TABLE incident_event ENABLE TRIGGER incident_event_append_only;
SELECT 'deleted ' || count(*) || ' incidents from FROM' FROM mv_gone;
COMMIT;
SQL
