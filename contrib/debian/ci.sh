#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# contrib/debian/ci.sh - CI for the Debian package: build it (build.sh, with
# its build dependencies installed), run lintian on it, and with --container
# install it into a booted Debian 12 container and check it there
# (check-install.sh: starts, serves, workers as preforkd, purges cleanly).
#
#   contrib/debian/ci.sh [-o OUTDIR] [--container | --pid1 PID]
#
#   -o OUTDIR    results and logs (default: ./deb)
#   --container  a container of its own: debootstrap'd once into
#                $PREFORKD_DEB_CACHE/base (default /tmp/preforkd-deb-root),
#                copied to .../run for each run, booted with systemd-nspawn
#                --private-network, powered off at the end
#   --pid1 PID   an already booted container instead (e.g. that of
#                tests/systemd/); its PID 1 as the host sees it
#
# As root. DEB_BUILD_OPTIONS=nocheck skips the test suite in the build. Lintian
# fails the run on an error, a warning or an info tag not overridden in
# debian/preforkd.lintian-overrides (each override says why). Exit status: 0
# passed, 1 failed.
set -euo pipefail

usage() { awk 'NR >= 3 && /^#/ { sub(/^# ?/, ""); print; next } NR >= 3 { exit }' "$0"; }

here=$(cd "$(dirname "$0")" && pwd)
outdir=$PWD/deb
mode=none
pid1=
while [ $# -gt 0 ]; do
	case $1 in
	-o) outdir=$2; shift 2 ;;
	--container) mode=own; shift ;;
	--pid1) mode=given; pid1=$2; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "ci.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
export DEBIAN_FRONTEND=noninteractive LC_ALL=C
say() { printf '== deb: %s\n' "$*"; }

# --- build and lint -----------------------------------------------------------
need=
command -v dpkg-buildpackage >/dev/null || need="$need dpkg-dev"
command -v dh >/dev/null || need="$need debhelper"
command -v lintian >/dev/null || need="$need lintian"
if [ -n "$need" ]; then
	say "installing$need"
	apt-get install -y -q $need >/dev/null
fi
started=$(date +%s)
"$here/build.sh" --install-deps -o "$outdir" | tee "$outdir/build.out"
deb=$(tail -n 1 "$outdir/build.out")
say "built in $(($(date +%s) - started)) s: $(ls -l "$deb" | awk '{ print $5 }') bytes," \
    "Installed-Size $(dpkg-deb -f "$deb" Installed-Size) KiB"
dpkg-deb -c "$deb" | awk '{ print "   ", $1, $3, $6 }'
changes=${deb%.deb}.changes
say "lintian $(lintian --version | awk '{ print $2 }') on $(basename "$changes")"
# Shown with the overrides and their reasons; judged without them (lintian
# 2.116 counts a shown override as a failure).
lintian -I --pedantic --show-overrides --tag-display-limit 0 "$changes" 2>&1 |
	grep -v 'running with root privileges' | tee "$outdir/lintian.txt" || true
lint=0
lintian --fail-on error,warning,info -I --pedantic "$changes" >/dev/null 2>&1 || lint=$?
[ "$lint" -eq 0 ] || { echo "FAIL deb-lintian: exit status $lint"; exit 1; }
echo "PASS deb-lintian"

[ "$mode" != none ] || exit 0

# --- the container -----------------------------------------------------------
if [ "$mode" = given ]; then
	"$here/check-install.sh" "$pid1" "$deb"
	exit $?
fi

cache=${PREFORKD_DEB_CACHE:-/tmp/preforkd-deb-root}
mirror=${PREFORKD_DEB_MIRROR:-http://deb.debian.org/debian}
# What the package needs besides systemd, so that apt installs it offline.
include=systemd,systemd-sysv,dbus,libconfuse2
if ! command -v systemd-nspawn >/dev/null || ! command -v debootstrap >/dev/null; then
	say "installing systemd-container and debootstrap"
	apt-get install -y -q systemd-container debootstrap >/dev/null
fi
if [ "$(cat "$cache/base.stamp" 2>/dev/null)" != "bookworm minbase $include" ]; then
	say "debootstrap bookworm into $cache/base"
	rm -rf "$cache/base" "$cache/base.stamp"
	mkdir -p "$cache"
	debootstrap --variant=minbase --include="$include" bookworm "$cache/base" "$mirror" \
		>"$outdir/debootstrap.log" 2>&1 || { tail -n 30 "$outdir/debootstrap.log"; exit 1; }
	echo "bookworm minbase $include" >"$cache/base.stamp"
fi
rm -rf "$cache/run"
cp -a "$cache/base" "$cache/run"

say "booting $cache/run"
# Outside a booted host systemd-nspawn cannot register with machined:
# --register=no --keep-unit. Its own network: nothing of the host's is taken.
systemd-nspawn -q --register=no --keep-unit --private-network -D "$cache/run" -b \
	</dev/null >"$outdir/container.log" 2>&1 &
nspawn=$!
stop_container() {
	[ -n "${pid1:-}" ] && nsenter -t "$pid1" -a -- systemctl poweroff >/dev/null 2>&1
	for _ in $(seq 1 100); do
		kill -0 "$nspawn" 2>/dev/null || return 0
		sleep 0.2
	done
	kill "$nspawn" 2>/dev/null
	wait "$nspawn" 2>/dev/null
}
trap stop_container EXIT
# Its PID 1: the child of nspawn that runs systemd.
pid1=
for _ in $(seq 1 100); do
	for d in /proc/[0-9]*; do
		[ "$(awk '/^PPid:/ { print $2 }' "$d/status" 2>/dev/null)" = "$nspawn" ] &&
			[ "$(cat "$d/comm" 2>/dev/null)" = systemd ] && pid1=${d#/proc/}
	done
	[ -n "$pid1" ] && break
	kill -0 "$nspawn" 2>/dev/null || break
	sleep 0.2
done
[ -n "$pid1" ] || { tail -n 30 "$outdir/container.log"; echo "FAIL deb-container: did not boot"; exit 1; }
state=$(timeout 120 nsenter -t "$pid1" -a -- systemctl is-system-running --wait 2>/dev/null || true)
case $state in
running|degraded) say "container PID 1 is $pid1 on the host, system $state" ;;
*) tail -n 30 "$outdir/container.log"; echo "FAIL deb-container: system is '$state'"; exit 1 ;;
esac
"$here/check-install.sh" "$pid1" "$deb"
