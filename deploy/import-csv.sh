#!/usr/bin/env bash
# Import one CSV file of org units, categories, SLA rows, calendar days, working hours, unit boundaries or addresses.
#
#   deploy/import-csv.sh [-s SLA_FILE] KIND FILE [DSN]
#
#   KIND        org         org units      code,name,level,kind,parent,households
#               categories  categories     code,name,sector,admitted_level,default_priority,group_name
#               sla         time limits    category,priority,basis,sign_limit_s,resolve_limit_s,
#                                          warn_percent,max_extension_s
#               calendar    calendar days  day,working,name
#               hours       working hours  starts,ends (H:MM; the file replaces all periods)
#               boundaries  unit polygons  code,wkt (WKT Polygon/MultiPolygon, lon lat in WGS 84)
#               addresses   address points road,number,lon,lat[,label]
#   FILE        UTF-8 CSV whose first line names exactly those columns, in that
#               order (a UTF-8 byte order mark, as Excel writes, is skipped)
#   DSN         libpq connection string or URI; default $GD_DB_DSN
#   -s SLA_FILE with KIND categories: also import this time-limit file, in the
#               same transaction (so a category and its limits arrive together)
#
# The file is copied into a staging table and imported by the matching SQL
# function (broker/sql/0002_import.sql, 0003_working_hours.sql,
# 0008_geo_import.sql) in one transaction: either every row is inserted or
# updated, or the import is refused with a message naming each bad line and
# nothing changes. Rows
# missing from the file are never deleted, except working hours: the periods
# of a working day are one set, so the file replaces them.
# Prints "imported N org units" (etc.) and exits 0, or prints psql's error
# and exits non-zero.
set -euo pipefail

prog=${0##*/}

usage()
{
    {
        printf 'usage:'
        sed -n '4,28s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
    } >&2
    exit 2
}

die()
{
    printf '%s: %s\n' "$prog" "$*" >&2
    exit 1
}

# The \copy meta-command takes the rest of its line literally (no psql
# variables), so the file name is written into the script as a quoted
# literal; psql reads a doubled quote inside it as one quote.
copy_line()
{
    local table=$1 columns=$2 path=$3
    [[ $path != *$'\n'* ]] || die "file names with a line break are not supported: $path"
    printf "\\\\copy %s (%s) FROM '%s' WITH (FORMAT csv, HEADER match, ENCODING 'UTF8')\n" \
        "$table" "$columns" "${path//\'/\'\'}"
}

sla_file=""
while getopts ":s:h" opt; do
    case $opt in
    s) sla_file=$OPTARG ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
(($# == 2 || $# == 3)) || usage

kind=$1
file=$2
case $kind in
org | categories | sla | calendar | hours | boundaries | addresses) ;;
*) usage ;;
esac
dsn=${3:-${GD_DB_DSN:-}}
[[ -n $dsn ]] || die "no database: pass a DSN as the third argument or set GD_DB_DSN"
[[ -z $sla_file || $kind == categories ]] || die "-s SLA_FILE goes only with KIND categories"

tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/gd-import.XXXXXX")
trap 'rm -rf "$tmpdir"' EXIT

# Print the path psql should read for CSV file $1: the file itself, or a copy
# without the UTF-8 byte order mark, which HEADER match would otherwise see as
# part of the first column name.
csv_path()
{
    local path=$1 copy
    [[ -f $path && -r $path ]] || die "cannot read $path"
    if [[ $(head -c 3 "$path" | od -An -tx1 | tr -d ' \n') == efbbbf ]]; then
        copy=$(mktemp "$tmpdir/csv.XXXXXX")
        tail -c +4 "$path" >"$copy"
        path=$copy
    fi
    printf '%s\n' "$path"
}

org_columns="code, name, level, kind, parent, households"
category_columns="code, name, sector, admitted_level, default_priority, group_name"
sla_columns="category, priority, basis, sign_limit_s, resolve_limit_s, warn_percent, max_extension_s"
calendar_columns="day, working, name"
hours_columns="starts, ends"
boundary_columns="code, wkt"

# The columns of an address file: label is optional, the header says.
address_columns()
{
    local header
    header=$(head -n 1 "$1" | tr -d '\r')
    if [[ $header == road,number,lon,lat ]]; then
        printf '%s\n' "road, number, lon, lat"
    else
        printf '%s\n' "road, number, lon, lat, label"
    fi
}

# Set after the \copy lines: a COPY error's CONTEXT names the bad CSV line and
# must be shown; an import function's names only PL/pgSQL internals.
quiet_context='\set SHOW_CONTEXT never'

script=$tmpdir/import.sql
path=$(csv_path "$file")
case $kind in
org)
    {
        copy_line import_org_unit "$org_columns" "$path"
        printf '%s\n' "$quiet_context"
        printf '%s\n' 'SELECT gd_import_org_units() AS n \gset'
        printf '%s\n' '\echo imported :n org units'
    } >"$script"
    ;;
categories)
    {
        copy_line import_category "$category_columns" "$path"
        if [[ -n $sla_file ]]; then
            copy_line import_category_sla "$sla_columns" "$(csv_path "$sla_file")"
        fi
        printf '%s\n' "$quiet_context"
        # The function empties the staging tables, so count the SLA rows first.
        printf '%s\n' 'SELECT count(*) AS n_sla FROM import_category_sla \gset'
        printf '%s\n' 'SELECT gd_import_categories() AS n \gset'
        if [[ -n $sla_file ]]; then
            printf '%s\n' '\echo imported :n categories and :n_sla SLA rows'
        else
            printf '%s\n' '\echo imported :n categories'
        fi
    } >"$script"
    ;;
sla)
    {
        copy_line import_category_sla "$sla_columns" "$path"
        printf '%s\n' "$quiet_context"
        printf '%s\n' 'SELECT count(*) AS n_sla FROM import_category_sla \gset'
        printf '%s\n' 'SELECT gd_import_categories() AS n \gset'
        printf '%s\n' '\echo imported :n_sla SLA rows'
    } >"$script"
    ;;
calendar)
    {
        copy_line import_calendar_day "$calendar_columns" "$path"
        printf '%s\n' "$quiet_context"
        printf '%s\n' 'SELECT gd_import_calendar() AS n \gset'
        printf '%s\n' '\echo imported :n calendar days'
    } >"$script"
    ;;
hours)
    {
        copy_line import_working_hours "$hours_columns" "$path"
        printf '%s\n' "$quiet_context"
        printf '%s\n' 'SELECT gd_import_working_hours() AS n \gset'
        printf '%s\n' '\echo imported :n working periods'
    } >"$script"
    ;;
boundaries)
    {
        copy_line import_unit_boundary "$boundary_columns" "$path"
        printf '%s\n' "$quiet_context"
        printf '%s\n' 'SELECT gd_import_boundaries() AS n \gset'
        printf '%s\n' '\echo imported :n unit boundaries'
    } >"$script"
    ;;
addresses)
    {
        copy_line import_address_point "$(address_columns "$path")" "$path"
        printf '%s\n' "$quiet_context"
        printf '%s\n' 'SELECT gd_import_addresses() AS n \gset'
        printf '%s\n' '\echo imported :n addresses'
    } >"$script"
    ;;
esac

# The summary is held back until psql has committed, so "imported" is never
# printed for an import that rolled back. The script goes in on stdin so that
# errors are located as "psql:<stdin>:LINE", not in a temporary file.
if ! out=$(psql -X -q -1 -v ON_ERROR_STOP=1 -d "$dsn" -f - <"$script"); then
    die "$kind import from $file failed; nothing was changed"
fi
printf '%s\n' "$out"
if [[ $kind == boundaries || $kind == addresses ]]; then
    echo "the broker reads them at start and on SIGHUP: systemctl reload gd-broker"
fi
