#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# tests/systemd/run.sh - preforkd under a real systemd: Debian 12's systemd
# booted as PID 1 in a systemd-nspawn container, preforkd built and installed
# there with "make install" (and tests/appworker, an app worker for the
# reload check), and the checks of tests/systemd/check_*.sh run
# inside it, each ending in a PASS or FAIL line.
#
#   tests/systemd/run.sh [CHECK...]    as root; CHECK is start, reload, socket,
#                                      watchdog, config, restart, upgrade or security
#
# The container's base tree (debootstrap, the host's apt sources, the build
# dependencies) is cached in $PREFORKD_SYSD_CACHE/base and made again when
# its package list changes; every run works on a fresh copy of it
# ($PREFORKD_SYSD_CACHE/run), so no run sees what another left. The mirror is
# the host's first Debian source (PREFORKD_SYSD_MIRROR to choose another).
# The container has a network of its own (--private-network): its traffic
# stays on its own loopback and no port of the host is taken.
#
# Exit status: 0 every check passed; 1 a check or the setup failed; 77 the
# machine cannot run the container at all (not root), said on stdout.
set -euo pipefail

srcdir=$(cd "$(dirname "$0")/../.." && pwd)
cache=${PREFORKD_SYSD_CACHE:-/tmp/preforkd-sysd-root}
base=$cache/base
run=$cache/run
jobs=${PREFORKD_SYSD_JOBS:-$(nproc)}
all_checks="start reload socket watchdog config restart upgrade security"
checks=${*:-$all_checks}
# The build dependencies of the README's quick start, plus what the checks
# use: jq reads preforkctl status --json, iproute2's ss shows who holds a
# socket.
packages="build-essential autoconf automake pkg-config libconfuse-dev libsystemd-dev
	  jq iproute2"
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

say() { printf '== systemd: %s\n' "$*"; }
die() { printf 'FAIL setup: %s\n' "$*"; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP systemd: needs root (debootstrap, systemd-nspawn, nsenter); nothing was run"
	exit 77
fi
for c in $checks; do
	case " $all_checks " in *" $c "*) ;; *) die "unknown check '$c' (known: $all_checks)";; esac
done

started=$(date +%s)
since() { echo $(($(date +%s) - $1)); }

# One run at a time per cache: a second waits for the first.
mkdir -p "$cache"
exec 9> "$cache/lock"
flock -w 1800 9 || die "$cache/lock: another run has held it for 30 minutes"

# --- host tools -------------------------------------------------------------
if ! command -v systemd-nspawn >/dev/null || ! command -v debootstrap >/dev/null; then
	say "installing systemd-container and debootstrap on the host"
	apt-get update -qq && apt-get install -y -qq systemd-container debootstrap >/dev/null ||
		die "apt-get install systemd-container debootstrap"
fi
command -v nsenter >/dev/null || die "nsenter (util-linux) not found"

# Outside a booted container nspawn would ask the host's systemd for a scope
# (and fail where PID 1 is not systemd): --register=no --keep-unit.
nspawn() { systemd-nspawn -q --register=no --keep-unit "$@"; }

# The host's first Debian mirror: URIs: of a deb822 source with a bookworm
# suite, or the URI of a one-line "deb URI bookworm ..." source.
host_mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk 'BEGIN { RS = ""; FS = "\n" }
		     /(^|\n)Suites:[^\n]*[ \t]bookworm([ \t]|\n|$)/ && /(^|\n)Types:[^\n]*deb([ \t]|\n|$)/ {
			for (i = 1; i <= NF; i++) if ($i ~ /^URIs:/) { split($i, u, /[ \t]+/); print u[2]; exit } }' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' "$f"
	done
}

# --- the base tree, cached --------------------------------------------------
base_key="bookworm minbase systemd,systemd-sysv,dbus | $(echo $packages)"
if [ ! -f "$base/.preforkd-base" ] || [ "$(cat "$base/.preforkd-base")" != "$base_key" ]; then
	mirror=${PREFORKD_SYSD_MIRROR:-$(host_mirror | head -n 1)}
	[ -n "$mirror" ] || die "no bookworm source in the host's apt sources; set PREFORKD_SYSD_MIRROR"
	t=$(date +%s)
	say "debootstrap bookworm into $base (from the host's mirror)"
	rm -rf "$base" "$base.new"
	debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$base.new" \
		"$mirror" > "$cache/debootstrap.log" 2>&1 ||
		{ tail -n 30 "$cache/debootstrap.log"; die "debootstrap"; }
	# The host's apt sources (and the keyrings they name) replace debootstrap's.
	rm -f "$base.new/etc/apt/sources.list" "$base.new"/etc/apt/sources.list.d/*
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] && cp "$f" "$base.new$f"
	done
	for k in $(sed -n 's/.*signed-by=\([^] ]*\).*/\1/ip; s/^Signed-By:[ \t]*\(\/.*\)/\1/p' \
			/etc/apt/sources.list /etc/apt/sources.list.d/*.list \
			/etc/apt/sources.list.d/*.sources 2>/dev/null | sort -u); do
		[ -f "$k" ] && [ ! -e "$base.new$k" ] && mkdir -p "$base.new$(dirname "$k")" && cp "$k" "$base.new$k"
	done
	say "apt-get install in the tree: $(echo $packages)"
	nspawn -D "$base.new" --pipe -E DEBIAN_FRONTEND=noninteractive -- /bin/sh -c \
		"apt-get update -qq && apt-get install -y -qq --no-install-recommends $(echo $packages) && apt-get clean" \
		> "$cache/apt.log" 2>&1 </dev/null || { tail -n 30 "$cache/apt.log"; die "apt-get in the tree"; }
	echo "$base_key" > "$base.new/.preforkd-base"
	mv "$base.new" "$base"
	say "base tree ready in $(since "$t") s ($(du -sm "$base" | cut -f1) MB)"
else
	say "base tree cached in $base"
fi

# --- this run's tree: a copy of the base, preforkd built and installed -------
t=$(date +%s)
rm -rf "$run"
cp -a "$base" "$run"
mkdir -p "$run/usr/src/preforkd"
# The sources only: a git checkout gives its tracked and new files (an
# in-tree build of the host stays out); otherwise the tree is copied and
# any configuration of it removed inside.
if git -C "$srcdir" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$srcdir" && git ls-files -z --cached --others --exclude-standard |
		tar --null -T - -cf - --ignore-failed-read 2>/dev/null) | tar -C "$run/usr/src/preforkd" -xf -
else
	tar -C "$srcdir" --exclude=.git -cf - . | tar -C "$run/usr/src/preforkd" -xf -
fi
say "building preforkd in the tree (make -j$jobs, make install)"
nspawn -D "$run" --pipe -- /bin/sh -c "cd /usr/src/preforkd &&
	{ [ ! -f Makefile ] || make distclean; } &&
	autoreconf -fi && ./configure --prefix=/usr --sysconfdir=/etc --localstatedir=/var --enable-werror &&
	make -j$jobs && make tests/appworker && make install" > "$cache/build.log" 2>&1 </dev/null ||
	{ tail -n 40 "$cache/build.log"; die "build in the tree"; }
say "built and installed in $(since "$t") s"

# --- boot it ------------------------------------------------------------------
nspawn_pid=
pid1=
inside() {
	nsenter -t "$pid1" -a -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C \
		SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}
# Asks the container's systemd to power off and waits for nspawn to end; it
# is killed, by its pid, only if it has not ended in 60 s.
shutdown_container() {
	local i
	[ -n "$nspawn_pid" ] || return 0
	if [ -n "$pid1" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
		inside systemctl poweroff >/dev/null 2>&1 || true
	fi
	for ((i = 0; i < 600; i++)); do
		kill -0 "$nspawn_pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$nspawn_pid" 2>/dev/null; then
		echo "systemd-nspawn (pid $nspawn_pid) still running 60 s after poweroff: killed"
		kill -TERM "$nspawn_pid" 2>/dev/null || true
		sleep 5
		kill -KILL "$nspawn_pid" 2>/dev/null || true
	fi
	wait "$nspawn_pid" 2>/dev/null || true
	nspawn_pid=
}
trap shutdown_container EXIT

t=$(date +%s)
systemd-nspawn -q --register=no --keep-unit --private-network -D "$run" -b --console=read-only \
	</dev/null > "$cache/console.log" 2>&1 &
nspawn_pid=$!
# The container's init: the child of nspawn that is pid 1 in its own namespace.
find_init() {
	local p
	for p in /proc/[0-9]*; do
		awk -v parent="$nspawn_pid" '/^PPid:/ { pp = $2 }
			/^NSpid:/ { exit !(pp == parent && $NF == 1) }' "$p/status" 2>/dev/null &&
			{ echo "${p#/proc/}"; return 0; }
	done
	return 1
}
for ((i = 0; i < 300; i++)); do
	kill -0 "$nspawn_pid" 2>/dev/null || { cat "$cache/console.log"; die "systemd-nspawn exited"; }
	pid1=$(find_init) && break
	sleep 0.1
done
[ -n "$pid1" ] || die "no init in the container after 30 s"
# Its manager's bus comes a moment after init starts.
for ((i = 0; i < 300; i++)); do
	inside systemctl is-system-running >/dev/null 2>&1 && break
	state=$(inside systemctl is-system-running 2>/dev/null || true)
	case "$state" in running|degraded|starting|initializing|maintenance|stopping) break;; esac
	sleep 0.1
done
state=$(inside timeout 120 systemctl is-system-running --wait 2>/dev/null || true)
case "$state" in
running) say "booted (systemd $(inside systemctl --version | awk 'NR == 1 { print $2 }'), running, in $(since "$t") s";;
degraded)
	say "booted, degraded, in $(since "$t") s; failed units:"
	inside systemctl --failed --no-legend --plain | sed 's/^/   /';;
*) tail -n 40 "$cache/console.log"; die "the container's systemd is '$state' after 120 s";;
esac

# --- the checks -----------------------------------------------------------------
passed=0
failed=0
failed_names=
for c in $checks; do
	t=$(date +%s)
	rc=0
	inside env PREFORKD_SRC=/usr/src/preforkd bash "/usr/src/preforkd/tests/systemd/check_$c.sh" \
		2>&1 | tee "$cache/check_$c.out" || rc=$?
	# A script that stopped on an error of its own has said neither.
	if [ "$rc" -eq 0 ] && grep -q "^PASS $c:" "$cache/check_$c.out"; then
		passed=$((passed + 1))
	else
		grep -q "^FAIL $c:" "$cache/check_$c.out" || echo "FAIL $c: the check ended with status $rc"
		failed=$((failed + 1))
		failed_names="$failed_names $c"
		echo "-- journal of preforkd after check $c (last 60 lines):"
		inside journalctl --no-pager -o short-monotonic -n 60 -u preforkd.service -u preforkd.socket | sed 's/^/   /'
	fi
	say "check $c took $(since "$t") s"
done

shutdown_container
trap - EXIT
say "stage took $(since "$started") s"
echo "systemd: $passed passed, $failed failed${failed_names:+ (failed:$failed_names)}"
[ "$failed" -eq 0 ]
