# SPDX-License-Identifier: ISC
# common.sh - what the benchmark scripts share (sourced by run.sh, app.sh, proxy.sh).

# CPU ticks (utime+stime+cutime+cstime) of PID and all its descendants: what
# has exited is in its parent's cumulative times, so a delta loses nothing.
tree_ticks() {
	queue=$1 total=0
	while set -- $queue && [ $# -gt 0 ]; do
		p=$1; shift; queue=$*
		stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		set -- ${stat##*") "}
		total=$((total + ${12} + ${13} + ${14} + ${15}))
		queue="$queue $(cat /proc/"$p"/task/*/children 2>/dev/null || true)"
	done
	echo "$total"
}
