#!/usr/bin/env bash
# check-units.sh - systemd-analyze verify of the installed units against a temporary root holding `meson install` of a build.
#
#   deploy/check-units.sh BUILD_DIR
#
# Installs BUILD_DIR with DESTDIR into a temporary root (prefix as configured,
# /usr/local by default), adds the host's system units and the host programs
# the units name outside the prefix (/bin/kill), copies the installed units
# (share/griddispatch/systemd) to etc/systemd/system with one instance of each
# template (named after its example config) and runs `systemd-analyze verify
# --root`. Then runs every unit's ExecStart with --check-config against the
# installed example configs placed in etc/griddispatch. Prints what is wrong
# and exits 1; 0 when verify printed nothing and every check passed.
set -uo pipefail

build=${1:?usage: deploy/check-units.sh BUILD_DIR}
command -v systemd-analyze >/dev/null || {
    echo "check-units: systemd-analyze is missing (apt-get install systemd)" >&2
    exit 2
}
root=$(mktemp -d "${TMPDIR:-/tmp}/gd-units.XXXXXX") || exit 1
trap 'rm -rf -- "$root"' EXIT
fail=0

DESTDIR=$root meson install -C "$build" --no-rebuild --quiet >/dev/null ||
    { echo "check-units: meson install failed" >&2; exit 1; }
share=$(find "$root" -type d -path '*/share/griddispatch' | head -1)
[[ -n $share && -d $share/systemd ]] || { echo "check-units: no share/griddispatch/systemd installed" >&2; exit 1; }

mkdir -p "$root/usr/lib/systemd" "$root/etc/systemd/system" "$root/etc/griddispatch"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
cp "$share"/systemd/*.service "$root/etc/systemd/system/"
cp "$share"/config/* "$root/etc/griddispatch/"
# the example keys file is found where the units expect it
sed -i "s|/etc/griddispatch/|$root/etc/griddispatch/|" "$root/etc/griddispatch/gd-open311.ini"

# Instances: gd-sla@all (gd-sla-all.ini), gd-worker@500113001 (gd-worker-500113001.ini).
units=()
for f in "$root"/etc/systemd/system/*.service; do
    u=$(basename "$f")
    if [[ $u == *@.service ]]; then
        prog=${u%@.service}
        for ini in "$root/etc/griddispatch/$prog"-*.ini; do
            [[ -f $ini ]] || { echo "check-units: $u has no example $prog-<instance>.ini" >&2; fail=1; continue; }
            inst=${ini##*/"$prog"-}
            inst=${inst%.ini}
            ln -s "$u" "$root/etc/systemd/system/$prog@$inst.service"
            units+=("$prog@$inst.service")
        done
    else
        units+=("$u")
    fi
done

# host programs the units run outside the install prefix
while read -r path; do
    [[ -e $root$path ]] && continue
    if [[ -x $path ]]; then
        mkdir -p "$root$(dirname "$path")"
        cp "$path" "$root$path"
    fi
done < <(sed -n 's/^Exec[A-Za-z]*=[-@:+!]*\(\/[^ ]*\).*/\1/p' "$root"/etc/systemd/system/*.service | sort -u)

out=$(cd "$root" && SYSTEMD_LOG_COLOR=0 systemd-analyze verify --root="$root" "${units[@]}" 2>&1)
rc=$?
if ((rc != 0)) || [[ -n $out ]]; then
    printf 'check-units: systemd-analyze verify (exit %d):\n%s\n' "$rc" "$out" >&2
    fail=1
else
    printf 'check-units: systemd-analyze verify: %d units clean\n' "${#units[@]}"
fi

# Each ExecStart, run with --check-config against the example configs.
for u in "${units[@]}"; do
    inst=""
    [[ $u == *@*.service ]] && { inst=${u#*@}; inst=${inst%.service}; }
    line=$(sed -n 's/^ExecStart=//p' "$root/etc/systemd/system/$u")
    line=${line//%i/$inst}
    read -r -a argv <<<"$line"
    argv[0]=$root${argv[0]}
    for i in "${!argv[@]}"; do
        argv[i]=${argv[i]//\/etc\/griddispatch\//$root/etc/griddispatch/}
    done
    if ! msg=$(env -u GD_DB_DSN -u GD_INTAKE "${argv[@]}" --check-config 2>&1 >/dev/null); then
        printf 'check-units: %s: ExecStart --check-config failed: %s\n' "$u" "$msg" >&2
        fail=1
    fi
done
((fail)) || echo "check-units: every ExecStart passes --check-config with the example configs"
exit "$fail"
