#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# check_start.sh - "systemctl start preforkd" returns when the daemon is
# ready (Type=notify: after READY=1): the unit is active, preforkctl status
# answers at once with every worker ready, TCP and unix clients are
# served, the unit's StatusText is the master's STATUS= text and MainPID
# is the master.
. "$(dirname "$0")/lib.sh"

fresh
t0=$(now_ms)
systemctl start preforkd.service || fail "systemctl start preforkd failed"
took=$(($(now_ms) - t0))
# Asked once, right away: with Type=simple the master would still be starting.
read -r ready starting waiting < <(status '.totals | [.ready, .starting, .waiting] | @tsv' 2>/dev/null) ||
	fail "preforkctl status does not answer right after systemctl start returned"
[ "$ready" = 2 ] && [ "$starting" = 0 ] && [ "$waiting" = 0 ] ||
	fail "right after systemctl start: $ready workers ready, $starting starting, $waiting waiting"
state=$(prop preforkd.service ActiveState)/$(prop preforkd.service SubState)
[ "$state" = active/running ] || fail "preforkd.service is $state after systemctl start"
text=$(prop preforkd.service StatusText)
case "$text" in
*" workers ready"*) ;;
*) fail "StatusText is '$text', not the daemon's STATUS= ('N services, N of N workers ready')";;
esac
main=$(prop preforkd.service MainPID)
pid=$(status .pid)
[ "$main" = "$pid" ] || fail "MainPID $main, but preforkctl status says the master is pid $pid"
echo_once "$TCP" || fail "no echo over TCP $TCP"
echo_once "$UNIX" || fail "no echo over $UNIX"
pass "active/running $took ms after systemctl start, MainPID $main is the master, StatusText '$text', TCP and unix answered"
