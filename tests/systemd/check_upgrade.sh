#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# check_upgrade.sh - 5 binary upgrades in place under continuous TCP and unix
# load, the way a package upgrade does it: the binary is written beside the
# installed one and renamed over it, then "preforkctl upgrade". systemd must
# see nothing but a reload: MainPID the same, active throughout, NRestarts
# unchanged, no watchdog timeout with WatchdogSec=2s (a drop-in), StatusText
# saying the upgrade; the load must lose no connection.
. "$(dirname "$0")/lib.sh"

upgrades=5
fresh
dropin watchdog "WatchdogSec=2s"
systemctl start preforkd.service || fail "systemctl start preforkd failed"
pid=$(prop preforkd.service MainPID)
restarts=$(prop preforkd.service NRestarts)
exe=$(readlink "/proc/$pid/exe")
mark=$(journal_mark)
load_start tcp "$TCP"
load_start unix "$UNIX"
flowing 150
for ((i = 1; i <= upgrades; i++)); do
	cp -p "$exe" "$exe.new" && mv -f "$exe.new" "$exe"
	t0=$(now_ms)
	out=$(preforkctl upgrade 2>&1) || fail "upgrade $i: preforkctl upgrade: $out"
	took=$(($(now_ms) - t0))
	case "$out" in *"upgraded to preforkd"*) ;; *) fail "upgrade $i: preforkctl said: $out";; esac
	[ "$(prop preforkd.service MainPID)" = "$pid" ] || fail "upgrade $i: MainPID $pid -> $(prop preforkd.service MainPID)"
	is_active || fail "upgrade $i: $(prop preforkd.service ActiveState)"
	echo "   upgrade $i: preforkctl upgrade $took ms: $out"
	flowing 100
done
sleep 3	# past a watchdog period after the last one
load_stop
[ "$(prop preforkd.service MainPID)" = "$pid" ] || fail "MainPID changed after the upgrades"
n=$(prop preforkd.service NRestarts)
[ "$n" = "$restarts" ] || fail "NRestarts went from $restarts to $n"
! journal_since "$mark" | grep -q 'Watchdog timeout' || fail "a watchdog timeout during the upgrades"
case "$(prop preforkd.service StatusText)" in
*"upgraded to preforkd"*) ;;
*) fail "StatusText does not say the upgrade: $(prop preforkd.service StatusText)";;
esac
[ "$load_failed" -eq 0 ] || fail "$upgrades upgrades under load: $load_text"
pass "$upgrades upgrades under load, MainPID $pid throughout, NRestarts $n, no watchdog timeout: $load_text"
