# SPDX-License-Identifier: ISC
# tests/systemd/lib.sh - what the checks run inside the container share: the
# PASS and FAIL lines, a clean unit to start from, bounded waits, the
# unit's properties, preforkctl's status, and paced load from loadgen.
set -euo pipefail

SRC=${PREFORKD_SRC:-/usr/src/preforkd}
LOADGEN=$SRC/contrib/bench/loadgen
CONF=/etc/preforkd/preforkd.conf
DROPIN=/run/systemd/system/preforkd.service.d
TCP=127.0.0.1:7007
UNIX=unix:/run/preforkd/echo.sock
check=$(basename "$0" .sh)
check=${check#check_}
tmp=$(mktemp -d "/tmp/check-$check.XXXXXX")
load_pids=
stopped_pid=

cleanup() {
	# Whatever this check started, by pid: its load, a master it stopped.
	[ -z "$load_pids" ] || kill -TERM $load_pids 2>/dev/null || true
	[ -z "$stopped_pid" ] || kill -CONT "$stopped_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
# A command of the check itself that fails ends it (set -e): say which.
set -E
trap 'echo "   $check: line $LINENO: \"$BASH_COMMAND\" failed"' ERR

pass() { echo "PASS $check: $*"; exit 0; }
fail() { echo "FAIL $check: $*"; exit 1; }
note() { echo "   $check: $*"; }

prop() { systemctl show -P "$2" "$1"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# poll SECONDS COMMAND...: runs COMMAND every 50 ms until it succeeds, for
# at most SECONDS; says whether it did.
poll() {
	local secs=$1 i
	shift
	for ((i = 0; i < secs * 20; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}
# wait_until SECONDS WHAT COMMAND...: poll, and fail the check with WHAT
# when COMMAND did not succeed in time.
wait_until() {
	local secs=$1 what=$2
	shift 2
	poll "$secs" "$@" || fail "$what: not within $secs s"
}

# The unit as installed, stopped, with the installed config: every check
# starts here, whatever the one before it left.
fresh() {
	systemctl stop preforkd.socket preforkd.service 2>/dev/null || true
	if [ -d "$DROPIN" ]; then
		rm -rf "$DROPIN"
		systemctl daemon-reload
	fi
	[ -f "$CONF.installed" ] || cp -p "$CONF" "$CONF.installed"
	cp -p "$CONF.installed" "$CONF"
	systemctl reset-failed preforkd.service preforkd.socket 2>/dev/null || true
}

# dropin NAME LINES...: a [Service] drop-in for preforkd.service.
dropin() {
	local name=$1
	shift
	mkdir -p "$DROPIN"
	printf '[Service]\n' > "$DROPIN/$name.conf"
	printf '%s\n' "$@" >> "$DROPIN/$name.conf"
	systemctl daemon-reload
}

# journal_mark: a cursor for journal_since, the journal's position now
# (timestamps of one second would take in what came just before).
journal_mark() { journalctl -q -n 0 --show-cursor | sed -n 's/^-- cursor: //p'; }
# journal_since CURSOR [MATCH...]: what preforkd.service logged since then.
journal_since() {
	local c=$1
	shift
	journalctl --no-pager -q -o cat --after-cursor="$c" -u preforkd.service "$@"
}

is_active() { [ "$(prop preforkd.service ActiveState)" = active ]; }

# status JQ: a field of preforkctl status --json.
status() { preforkctl status --json | jq -r "$1"; }
accepted() {
	local v
	v=$(preforkctl status --json 2>/dev/null |
		jq -r '[.services[].connections.accepted] | add // 0' 2>/dev/null) || v=0
	echo "${v:-0}"
}

# echo_once ADDRESS: one connection that must be answered.
echo_once() {
	local out
	out=$(timeout 15 "$LOADGEN" -m conn -c 1 -n 1 -d 10 -S none "$1" 2>&1) || true
	case "$out" in *" ops=1 "*" errors=0 "*) return 0;; esac
	note "one connection to $1: ${out:-no answer}"
	return 1
}

# load_start NAME ADDRESS [CLIENTS]: CLIENTS (3) paced clients, each one
# connection at a time (connect, 2 ms, send, read the echo, 2 ms, close, 2 ms),
# about 150 connections a second each, for at most 120 s and 100,000
# connections; loadgen ends at SIGTERM with its counts.
load_start() {
	local name=$1 addr=$2 n=${3:-3} i
	for ((i = 1; i <= n; i++)); do
		timeout -s KILL 150 "$LOADGEN" -m conn -c 1 -n 100000 -d 120 -p 2000 "$addr" \
			> "$tmp/load.$name.$i" 2>&1 &
		load_pids="$load_pids $!"
	done
}

# load_stop: ends the load and sets load_ops, load_failed, load_refused and
# load_text (per name, failures other than refused by kind: "other" is
# mostly ENOENT, a unix socket file that is not there) from the counts.
load_stop() {
	local f name
	[ -z "$load_pids" ] || kill -TERM $load_pids 2>/dev/null || true
	for p in $load_pids; do
		wait "$p" || true
	done
	load_pids=
	load_ops=0 load_failed=0 load_refused=0 load_text=
	for name in $(ls "$tmp" | sed -n 's/^load\.\([^.]*\)\..*/\1/p' | sort -u); do
		read -r ops failed refused kinds < <(awk '
			/ ops=/ { for (i = 1; i <= NF; i++) {
					split($i, kv, "=")
					if (kv[1] == "ops") o += kv[2]
					else if (kv[1] == "errors") e += kv[2]
					else if (kv[1] ~ /^err_/) k[substr(kv[1], 5)] += kv[2] } }
			END { s = ""
			      for (x in k) if (k[x] && x != "refused") s = s sprintf(", %s %d", x, k[x])
			      print o + 0, e + 0, k["refused"] + 0, s }' "$tmp"/load."$name".*)
		for f in "$tmp"/load."$name".*; do
			grep -q ' ops=' "$f" || { note "load $name: no result from loadgen: $(cat "$f")"; failed=$((failed + 1)); }
		done
		load_text="$load_text${load_text:+, }$name $ops connections, $failed failed ($refused refused$kinds)"
		load_ops=$((load_ops + ops))
		load_failed=$((load_failed + failed))
		load_refused=$((load_refused + refused))
		rm -f "$tmp"/load."$name".*
	done
}

# flowing N: the daemon now running has accepted N more connections.
flowing() {
	local from
	from=$(accepted)
	wait_until 20 "$1 connections accepted under load" more_accepted "$from" "$1"
}
more_accepted() { [ "$(accepted)" -ge $(($1 + $2)) ]; }
