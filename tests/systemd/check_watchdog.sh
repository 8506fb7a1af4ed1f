#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# check_watchdog.sh - a master that stops answering is restarted by
# systemd's watchdog: with WatchdogSec=2s (a drop-in; the unit has 30 s)
# the master is SIGSTOPped, systemd times it out, kills it, and starts a
# new one (MainPID changes, NRestarts goes up by one, active again,
# serving). The stopped master gets SIGCONT from us only if it outlived
# that; nothing else is continued.
. "$(dirname "$0")/lib.sh"

fresh
dropin watchdog "WatchdogSec=2s"
systemctl start preforkd.service || fail "systemctl start preforkd failed"
old=$(prop preforkd.service MainPID)
restarts=$(prop preforkd.service NRestarts)
mark=$(journal_mark)
# Two watchdog periods of pings first: a live master is not timed out.
sleep 4
[ "$(prop preforkd.service MainPID)" = "$old" ] || fail "MainPID changed from $old with the master running: a live master was timed out"
t0=$(now_ms)
kill -STOP "$old"
stopped_pid=$old
replaced() {
	local m
	m=$(prop preforkd.service MainPID)
	[ "$m" != 0 ] && [ "$m" != "$old" ] && is_active
}
wait_until 30 "a new master after SIGSTOP of $old" replaced
took=$(($(now_ms) - t0))
new=$(prop preforkd.service MainPID)
gone() { ! kill -0 "$old" 2>/dev/null; }
wait_until 10 "the stopped master $old gone" gone
stopped_pid=
n=$(prop preforkd.service NRestarts)
[ "$n" = $((restarts + 1)) ] || fail "NRestarts went from $restarts to $n, not up by one"
journal_since "$mark" | grep -q 'Watchdog timeout' ||
	fail "no 'Watchdog timeout' in the journal of preforkd.service"
echo_once "$TCP" && echo_once "$UNIX" || fail "the new master $new does not serve"
pass "master $old SIGSTOPped, watchdog timeout, new master $new active and serving $took ms later; NRestarts $restarts -> $n"
