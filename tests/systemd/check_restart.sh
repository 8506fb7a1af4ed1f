#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# check_restart.sh - 10 "systemctl restart preforkd" under continuous TCP
# and unix load. The unit keeps the listeners in systemd's fd store
# (FileDescriptorStoreMax=, FDSTORE=): while no master runs, the kernel
# queues new clients and the next master adopts the same sockets, so no
# connection is refused and none fails. Each restart's figures are printed.
. "$(dirname "$0")/lib.sh"

restarts=10
# from_store PID: the master PID says it took both listeners back from the
# fd store (its log; preforkctl status does not tell).
from_store() {
	[ "$(journalctl --no-pager -q -o cat _PID="$1" | grep -c "kept in the service manager's fd store")" = 2 ]
}
fresh
systemctl start preforkd.service || fail "systemctl start preforkd failed"
total_ops=0 total_failed=0 total_refused=0 bad=0
for ((i = 1; i <= restarts; i++)); do
	old=$(prop preforkd.service MainPID)
	load_start tcp "$TCP"
	load_start unix "$UNIX"
	flowing 150
	# systemd counts a restart against the unit's start limit (5 in 10 s):
	# an operator who restarts this often resets it as well.
	systemctl reset-failed preforkd.service
	t0=$(now_ms)
	systemctl restart preforkd.service || fail "restart $i: systemctl restart failed"
	took=$(($(now_ms) - t0))
	new=$(prop preforkd.service MainPID)
	is_active && [ "$new" != "$old" ] || fail "restart $i: MainPID $old -> $new, $(prop preforkd.service ActiveState)"
	flowing 150
	load_stop
	stored="both listeners from the fd store"
	poll 5 from_store "$new" || { stored="NOT both listeners from the fd store"; bad=$((bad + 1)); }
	echo "   restart $i: master $old -> $new, systemctl restart $took ms, $stored; $load_text"
	total_ops=$((total_ops + load_ops))
	total_failed=$((total_failed + load_failed))
	total_refused=$((total_refused + load_refused))
	[ "$load_failed" -eq 0 ] || bad=$((bad + 1))
done
summary="$restarts restarts under load: $total_ops connections, $total_failed failed ($total_refused refused)"
[ "$bad" -eq 0 ] || fail "$summary; $bad faults (restarts that lost connections or listeners not from the store)"
pass "$summary; both listeners taken back from the fd store every time"
