#!/usr/bin/env bash
# Load the demo district (deploy/demo/data/*.csv) into a griddispatch database.
#
#   deploy/demo/load.sh [DSN]        DSN defaults to $GD_DB_DSN
#
# The database must be migrated (broker/sql/*.sql). Imports the org tree,
# the categories with their time limits (one transaction), the holiday
# calendar, the working hours, every unit's boundary and the address points
# (deploy/import-csv.sh), then prints counts.
# Loading twice is harmless: imports update rows in place.
# Regenerate the CSV files with deploy/demo/gen_demo.py (org tree, catalogue,
# calendar), then deploy/demo/gen_geo.py (boundaries and addresses).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
import=$here/../import-csv.sh
data=$here/data

usage()
{
    sed -n '3,12s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
    exit 2
}

(($# <= 1)) || usage
[[ ${1:-} != -* ]] || usage
dsn=${1:-${GD_DB_DSN:-}}
[[ -n $dsn ]] || {
    echo "load.sh: no database: pass a DSN or set GD_DB_DSN" >&2
    exit 1
}

"$import" org "$data/org_units.csv" "$dsn"
"$import" -s "$data/category_sla.csv" categories "$data/categories.csv" "$dsn"
"$import" calendar "$data/calendar.csv" "$dsn"
"$import" hours "$data/working_hours.csv" "$dsn"
"$import" boundaries "$data/boundaries.csv" "$dsn"
"$import" addresses "$data/addresses.csv" "$dsn"

psql -X -q -v ON_ERROR_STOP=1 -d "$dsn" <<'SQL'
\echo database now holds:
SELECT level, kind, count(*) AS units, sum(households) AS households
  FROM org_unit
 GROUP BY level, kind
 ORDER BY min(length(code)), kind;
SELECT (SELECT count(*) FROM category) AS categories,
       (SELECT count(*) FROM category WHERE admitted_level = 'grid') AS grid_admitted,
       (SELECT count(*) FROM category_sla) AS sla_rows,
       (SELECT count(*) FROM calendar_day) AS calendar_days,
       (SELECT count(*) FROM working_hours) AS working_periods,
       (SELECT count(*) FROM unit_boundary) AS boundaries,
       (SELECT count(*) FROM address_point) AS addresses;
SQL
