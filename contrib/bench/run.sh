#!/bin/sh
# SPDX-License-Identifier: ISC
# run.sh - preforkd against its alternatives, round by round, on loopback and unix sockets.
#
#   contrib/bench/run.sh [--quick] [-r ROUNDS] [-d SECONDS] [-w WORKERS] [-n COUNT] [-o OUTDIR]
#
#   BUILD=DIR             preforkd is DIR/src/preforkd (configured and built there, -O2, if
#                         missing; default _bench_build/ in the source tree)
#   PREFORKD_BEFORE=FILE  FILE (an older src/preforkd) runs as system preforkd-before in
#                         every workload beside preforkd, to compare two builds in one run
#
# Installs its peers from Debian (xinetd, ucspi-tcp, socat, gnuplot) when run
# as root, builds the bench tools from this tree, then for every round runs
# each system on its own loopback port or unix socket, one after the other in
# an order that rotates every round:
#   W3 (conn: connect, 16-byte echo, close) and W4 (persist: 16-byte
#   request/response on kept connections), TCP and unix, C=32, WORKERS
#   workers; the same with 1 worker, server on CPU 0 and client on CPU 1
#   (-1wpin); W4 over TCP at C=512 (-c512), for its latency; W3 with an
#   exec handler running /bin/cat against tcpserver, xinetd, socat and the
#   spawn-only floor; the spread of connections over 4 workers; reload time
#   and idle RSS.
# Every run gets a fresh server instance, in a network namespace of its own
# when run as root (so it starts with no TIME_WAIT sockets, whatever ran
# before, ours or anyone's; without root: after TIME_WAIT has drained below
# TW_BOUND, for 65 s at most), the same clean environment (env -i
# PATH=/usr/bin:/bin: no locale for /bin/cat to load) and the same log level
# (preforkd at info, which logs nothing per connection; the fairness run
# alone at debug, for each worker's "connections served" at exit; the peers
# with their defaults, which log nothing per connection either). Beside each
# rate: the server's CPU time per operation (utime+stime+cutime+cstime of
# the server's whole process tree, from /proc, over the run) and loadgen's.
# Then, once, a deterministic pass: each echo server with 1 worker, one
# client pausing 100 us before each connect, send and close (loadgen -p: the
# server always takes the same path), COUNT and 2*COUNT operations on fresh
# instances; the slope between the two is its user-space instructions per
# operation (perf stat -e instructions:u where the CPU counts them, callgrind
# otherwise) and its syscalls per operation (perf stat -e
# raw_syscalls:sys_enter), start-up and stop left out. Every server is
# started here and stopped here, by its pid. Prints a markdown table of
# medians with their spread and same-round ratios, and draws OUTDIR/bench.png.
#
# --quick: 2 rounds of 1 s, COUNT 1000; for a look while developing (under
# 2 minutes on 2 cores; make bench-quick runs it on the build's preforkd).
# The full run (5 rounds of 5 s, COUNT 5000) is the one to publish: about
# 12.5 minutes on 2 cores (130 s a round, 105 s of counting), half as long
# again with PREFORKD_BEFORE.
set -eu

ROUNDS=5
SECONDS_PER_RUN=5
WORKERS=2
CLIENTS=32
COUNT=5000
OUT=contrib/bench/results
TW_BOUND=1000
PAUSE_US=100	# in the counting pass: the client's pause before each step
if [ "${1:-}" = --quick ]; then
	ROUNDS=2 SECONDS_PER_RUN=1 COUNT=1000
	shift
fi
while getopts r:d:w:n:o: opt; do
	case $opt in
	r) ROUNDS=$OPTARG ;;
	d) SECONDS_PER_RUN=$OPTARG ;;
	w) WORKERS=$OPTARG ;;
	n) COUNT=$OPTARG ;;
	o) OUT=$OPTARG ;;
	*) echo "usage: $0 [--quick] [-r ROUNDS] [-d SECONDS] [-w WORKERS] [-n COUNT] [-o OUTDIR]" >&2; exit 2 ;;
	esac
done

SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$SRC/_bench_build}
TMP=$(mktemp -d /tmp/preforkd-bench.XXXXXX)
SERVER=""
NSNAME=""
RUNNUM=0
cleanup() {
	[ -z "$SERVER" ] || kill "$SERVER" 2>/dev/null || true
	[ -z "$NSNAME" ] || ip netns del "$NSNAME" 2>/dev/null || true
	[ -n "${KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# valgrind and perf for the deterministic pass (below).
if [ "$(id -u)" = 0 ]; then
	for tool in tcpserver xinetd socat gnuplot valgrind perf; do
		if ! command -v $tool >/dev/null; then
			apt-get install -y -q xinetd ucspi-tcp socat gnuplot-nox valgrind linux-perf >/dev/null
			break
		fi
	done
fi
# Absolute paths: the servers run with PATH=/usr/bin:/bin only.
for tool in tcpserver xinetd socat; do
	command -v $tool >/dev/null || { echo "run.sh: $tool is missing (apt-get install xinetd ucspi-tcp socat)" >&2; exit 1; }
done
TCPSERVER=$(command -v tcpserver)
XINETD=$(command -v xinetd)
SOCAT=$(command -v socat)
CLEAN_ENV="env -i PATH=/usr/bin:/bin"

if [ ! -x "$BUILD/src/preforkd" ]; then
	(cd "$SRC" && [ -x configure ] || autoreconf -fi >/dev/null)
	mkdir -p "$BUILD"
	(cd "$BUILD" && "$SRC/configure" CFLAGS=-O2 >/dev/null && make -j"$(nproc)" src/preforkd >/dev/null)
fi
PREFORKD=$BUILD/src/preforkd
if [ -n "${PREFORKD_BEFORE:-}" ] && [ ! -x "$PREFORKD_BEFORE" ]; then
	echo "run.sh: PREFORKD_BEFORE=$PREFORKD_BEFORE is not an executable" >&2
	exit 1
fi
# The tools come from this tree, whichever build preforkd comes from.
mkdir -p "$TMP/bin"
for tool in loadgen refserver spawnfloor; do
	extra=""; [ $tool = spawnfloor ] || extra=$SRC/contrib/bench/benchaddr.c
	${CC:-cc} -std=gnu11 -O2 -Wall -Wextra -o "$TMP/bin/$tool" "$SRC/contrib/bench/$tool.c" $extra
done
LOADGEN=$TMP/bin/loadgen
REFSERVER=$TMP/bin/refserver
SPAWNFLOOR=$TMP/bin/spawnfloor
mkdir -p "$OUT"
RAW=$OUT/raw.txt
: > "$RAW"
HZ=$(getconf CLK_TCK)

# A network namespace per server instance, when we may make one.
USE_NETNS=""
if [ "$(id -u)" = 0 ] && ip netns add "pfbench-$$-0" 2>/dev/null; then
	ip netns del "pfbench-$$-0"
	USE_NETNS=1
else
	echo "run.sh: no network namespaces (not root?): each run waits for TIME_WAIT to drain instead" >&2
fi
NSNUM=0
NS=""
tw_count() { echo $(($($NS ss -Htan state time-wait 2>/dev/null | wc -l))); }
ns_up() {
	if [ -n "$USE_NETNS" ]; then
		NSNUM=$((NSNUM + 1))
		NSNAME=pfbench-$$-$NSNUM
		ip netns add "$NSNAME"
		NS="ip netns exec $NSNAME"
		$NS ip link set lo up
		return
	fi
	i=0
	while [ "$(tw_count)" -ge $TW_BOUND ] && [ $i -lt 650 ]; do
		i=$((i + 1)); sleep 0.1
	done
}
ns_down() {
	[ -n "$NSNAME" ] || return 0
	tw=$(tw_count)
	ip netns del "$NSNAME"
	NSNAME=""
	NS=""
	# A kernel worker frees its TIME_WAIT sockets now (50 ms of CPU for 50,000):
	# not during the next run.
	[ "$tw" -lt $TW_BOUND ] || sleep 0.3
}

# Below the ephemeral range (32768-60999), where the clients' own ports would collide.
PORT=$((20000 + $$ % 10000))
next_port() { PORT=$((PORT + 1)); }

# Waits until ADDRESS answers a connection, for 10 s at most.
wait_up() {
	i=0
	until $NS "$LOADGEN" -c 1 -n 1 -d 1 "$1" 2>/dev/null | grep -q 'ops=1'; do
		i=$((i + 1)); [ $i -lt 10 ] || { echo "run.sh: $1 did not come up" >&2; return 1; }
	done
}

# start NAME COMMAND...: in the background, in the run's namespace and clean
# environment (CPU 0 when PIN is set), its pid remembered for the stop.
start() {
	RUNNUM=$((RUNNUM + 1))
	LOG=$TMP/$1.$RUNNUM.log
	shift
	if [ -n "${PIN:-}" ]; then
		$NS $CLEAN_ENV taskset -c 0 "$@" >"$LOG" 2>&1 &
	else
		$NS $CLEAN_ENV "$@" >"$LOG" 2>&1 &
	fi
	SERVER=$!
}

stop() {
	kill "$SERVER" 2>/dev/null || true
	wait "$SERVER" 2>/dev/null || true
	SERVER=""
}

. "$SRC/contrib/bench/common.sh"	# tree_ticks

field() { echo "$2" | sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }

# measure SYSTEM WORKLOAD MODE ADDRESS [CLIENTS]: one loadgen run against the
# running server, one line of raw results with the server's CPU per operation.
measure() {
	clients=${5:-$CLIENTS}
	logb=$(wc -c < "$LOG")
	t0=$(tree_ticks "$SERVER")
	if [ -n "${PIN:-}" ]; then
		line=$($NS $CLEAN_ENV taskset -c 1 "$LOADGEN" -m "$3" -c "$clients" -d "$SECONDS_PER_RUN" "$4")
	else
		line=$($NS $CLEAN_ENV "$LOADGEN" -m "$3" -c "$clients" -d "$SECONDS_PER_RUN" "$4")
	fi
	t1=$(tree_ticks "$SERVER")
	ops=$(field ops "$line")
	cpu=$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="$ops" 'BEGIN { printf "%.1f", n ? t * 1e6 / hz / n : 0 }')
	echo "round=$ROUND system=$1 workload=$2 $line srv_ticks=$((t1 - t0)) srv_cpu_us_op=$cpu" \
	     "tw_end=$(tw_count) log_bytes=$(($(wc -c < "$LOG") - logb))" >> "$RAW"
}

# preforkd_conf FILE ADDRESS HANDLER WORKERS LOGLEVEL [EXTRA]: max-connections
# 10000 for echo; 1000 for exec, which needs two descriptors a connection.
# The control socket goes in $TMP, for every preforkd that has one (not
# preforkd-before when it predates it: $CONF_SYS says which system).
preforkd_conf() {
	maxconn=10000
	[ "$3" != exec ] || maxconn=1000
	control=""
	if [ "${CONF_SYS:-}" != preforkd-before ] || grep -qa "control-socket" "$PREFORKD_BEFORE"; then
		control="control-socket = \"$TMP/control.sock\""
	fi
	cat > "$1" <<EOF
$control
log-level = "$5"
service bench {
    listen = { "$2" }
    handler = "$3"
    workers = $4
    max-connections = $maxconn
${6:-}
}
EOF
}

preforkd_of() { # SYSTEM: its binary
	if [ "$1" = preforkd-before ]; then echo "$PREFORKD_BEFORE"; else echo "$PREFORKD"; fi
}

# start_echo SYSTEM ADDRESS WORKERS [WRAPPER...]: an echo server of SYSTEM.
start_echo() {
	es_sys=$1 es_addr=$2 es_workers=$3
	shift 3
	case $es_sys in
	preforkd*)
		CONF_SYS=$es_sys preforkd_conf "$TMP/$es_sys.conf" "$es_addr" echo "$es_workers" info
		start "$es_sys" "$@" "$(preforkd_of "$es_sys")" -c "$TMP/$es_sys.conf" ;;
	reference) start reference "$@" "$REFSERVER" -w "$es_workers" "$es_addr" ;;
	esac
}

address() { # SYSTEM FAMILY: ADDR, a new one
	next_port
	if [ "$2" = tcp ]; then ADDR=127.0.0.1:$PORT; else ADDR=unix:$TMP/$1.$PORT.sock; fi
}

# run_echo SYSTEM FAMILY WORKLOAD [VARIANT]: one fresh instance, one run.
# VARIANT 1wpin: 1 worker on CPU 0, the client on CPU 1; c512: 512 clients.
run_echo() {
	ns_up
	address "$1" "$2"
	addr=$ADDR
	nw=$WORKERS clients=$CLIENTS PIN="" wlname=$3-$2
	case ${4:-} in
	1wpin) nw=1 PIN=1 wlname=$wlname-1wpin ;;
	c512) clients=512 wlname=$wlname-c512 ;;
	esac
	start_echo "$1" "$addr" $nw
	wait_up "$addr"
	if [ "$3" = W3 ]; then mode=conn; else mode=persist; fi
	measure "$1" "$wlname" $mode "$addr" $clients
	stop
	PIN=""
	ns_down
}

run_exec() { # SYSTEM
	ns_up
	next_port
	addr=127.0.0.1:$PORT
	case $1 in
	preforkd*) CONF_SYS=$1 preforkd_conf "$TMP/$1.conf" "$addr" exec "$WORKERS" info '    exec = { "/bin/cat" }
    exec-stderr = "null"'
		start "$1" "$(preforkd_of "$1")" -c "$TMP/$1.conf" ;;
	tcpserver) start tcpserver "$TCPSERVER" -c 10000 -H -R -l 0 127.0.0.1 "$PORT" /bin/cat ;;
	socat) start socat "$SOCAT" "TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr,fork,backlog=511" EXEC:/bin/cat ;;
	xinetd)
		# Nothing logged per connection, as preforkd at info.
		cat > "$TMP/xinetd.conf" <<EOF
defaults
{
    instances = UNLIMITED
    per_source = UNLIMITED
    cps = 1000000 1
    log_on_success =
    log_on_failure =
}
service benchcat
{
    type = UNLISTED
    socket_type = stream
    protocol = tcp
    wait = no
    user = root
    server = /bin/cat
    port = $PORT
    bind = 127.0.0.1
    flags = REUSE
}
EOF
		start xinetd "$XINETD" -dontfork -f "$TMP/xinetd.conf" -pidfile "$TMP/xinetd.pid" ;;
	esac
	wait_up "$addr"
	measure "$1" W3-exec conn "$addr"
	stop
	ns_down
}

# The same helper run with no server and no network, as many at once as
# there are clients: the rate no exec-style server can pass on this machine.
run_floor() {
	line=$($CLEAN_ENV "$SPAWNFLOOR" -p "$CLIENTS" -d "$SECONDS_PER_RUN" /bin/cat)
	echo "round=$ROUND system=spawn-only workload=W3-exec $line" >> "$RAW"
}

# Fairness: 4 workers under W3, the one run at log level debug: each worker
# logs what it served at exit (and nothing per connection).
run_fairness() { # SYSTEM
	ns_up
	next_port
	addr=127.0.0.1:$PORT
	CONF_SYS=$1 preforkd_conf "$TMP/fair.conf" "$addr" echo 4 debug
	start fairness "$(preforkd_of "$1")" -c "$TMP/fair.conf"
	wait_up "$addr"
	$NS $CLEAN_ENV "$LOADGEN" -m conn -c "$CLIENTS" -d "$SECONDS_PER_RUN" "$addr" >/dev/null
	stop
	ns_down
	counts=$(sed -n 's/.*exiting: \([0-9]*\) connections served.*/\1/p' "$LOG" | sort -n)
	echo "round=$ROUND system=$1 workload=fairness served=$(echo $counts | tr ' ' ,)" >> "$RAW"
}

# Reload time (the master's own "reload ok (N ms)") and idle RSS.
run_reload_and_rss() { # SYSTEM
	ns_up
	next_port
	addr=127.0.0.1:$PORT
	CONF_SYS=$1 preforkd_conf "$TMP/reload.conf" "$addr" echo "$WORKERS" info
	start reload "$(preforkd_of "$1")" -c "$TMP/reload.conf"
	wait_up "$addr"
	master=$SERVER
	rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
	workers=$(cat "/proc/$master/task/$master/children")
	echo "round=$ROUND system=$1 workload=rss master_kib=$(rss "$master") workers_kib=$(for w in $workers; do rss "$w"; done | tr '\n' , | sed 's/,$//')" >> "$RAW"
	for i in 1 2 3 4 5; do
		kill -HUP "$master"
		n=0
		until [ "$(grep -c 'reload ok' "$LOG")" -ge $i ]; do
			n=$((n + 1)); [ $n -lt 100 ] || break; sleep 0.1
		done
	done
	ms=$(sed -n 's/.*reload ok: generation [0-9]* serving (\([0-9]*\) ms).*/\1/p' "$LOG" | tr '\n' , | sed 's/,$//')
	echo "round=$ROUND system=$1 workload=reload ms=$ms" >> "$RAW"
	stop
	ns_down
}

# The deterministic pass. What counts user-space instructions here: the
# CPU's counter through perf, or callgrind (valgrind follows the workers'
# fork; each process writes its own file).
perf_counts() { perf stat -x, -e "$1" true 2>&1 | grep -q "^[0-9][0-9]*,"; }
INSN=none
SYSCOUNT=""
if command -v perf >/dev/null && perf_counts instructions:u; then
	INSN=perf
elif command -v valgrind >/dev/null; then
	INSN=callgrind
fi
if command -v perf >/dev/null && perf_counts raw_syscalls:sys_enter; then
	SYSCOUNT=raw_syscalls:sys_enter
fi

# count_pass SYSTEM FAMILY MODE N TOOL: one fresh 1-worker instance under
# TOOL (callgrind or perf), N operations at C=1; COUNTED is "INSTRUCTIONS
# SYSCALLS" of the whole server ("-" for what TOOL does not count).
COUNTNUM=0
count_pass() {
	ns_up
	address "$1" "$2"
	addr=$ADDR
	COUNTNUM=$((COUNTNUM + 1))
	dir=$TMP/count.$COUNTNUM
	mkdir -p "$dir"
	if [ "$5" = callgrind ]; then
		start_echo "$1" "$addr" 1 valgrind -q --tool=callgrind --callgrind-out-file="$dir/callgrind.out.%p"
		server=$SERVER
	else
		events=$SYSCOUNT
		[ $INSN != perf ] || events=instructions:u,$events
		start_echo "$1" "$addr" 1 perf stat -x, -o "$dir/perf.txt" -e "$events" --
		# Stopping perf's child ends perf, which writes its counts.
		i=0
		until server=$(cat "/proc/$SERVER/task/$SERVER/children" 2>/dev/null) && [ -n "$server" ]; do
			i=$((i + 1)); [ $i -lt 100 ] || break; sleep 0.05
		done
	fi
	wait_up "$addr"
	$NS $CLEAN_ENV "$LOADGEN" -m "$3" -c 1 -n "$4" -p $PAUSE_US -d 300 "$addr" > "$dir/loadgen.txt"
	kill "$server" 2>/dev/null || true
	wait "$SERVER" 2>/dev/null || true
	SERVER=""
	ns_down
	if [ "$(field ops " $(cat "$dir/loadgen.txt")")" != "$4" ]; then
		echo "run.sh: $1 $2 $3: fewer than $4 operations in the counting pass" >&2
		COUNTED="- -"
	elif [ "$5" = callgrind ]; then
		COUNTED="$(cat "$dir"/callgrind.out.* | awk '/^summary:/ { s += $2 } END { print s }') -"
	else
		COUNTED=$(awk -F, '$3 ~ /instructions/ { i = $1 } $3 ~ /raw_syscalls/ { s = $1 }
			 END { print (i == "" ? "-" : i), (s == "" ? "-" : s) }' "$dir/perf.txt")
	fi
}

slope() { # A B: per operation between COUNT and 2*COUNT
	awk -v a="$1" -v b="$2" -v n="$COUNT" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%.1f", (b - a) / n }'
}

count_all() { # SYSTEM FAMILY WORKLOAD
	if [ "$3" = W3 ]; then mode=conn; else mode=persist; fi
	ir_op="-" sc_op="-"
	if [ $INSN = callgrind ]; then
		count_pass "$1" "$2" $mode "$COUNT" callgrind
		a=$COUNTED
		count_pass "$1" "$2" $mode $((2 * COUNT)) callgrind
		ir_op=$(slope "${a% *}" "${COUNTED% *}")
	fi
	if [ -n "$SYSCOUNT" ]; then
		count_pass "$1" "$2" $mode "$COUNT" perf
		a=$COUNTED
		count_pass "$1" "$2" $mode $((2 * COUNT)) perf
		sc_op=$(slope "${a#* }" "${COUNTED#* }")
		[ $INSN != perf ] || ir_op=$(slope "${a% *}" "${COUNTED% *}")
	fi
	echo "pass=count system=$1 workload=$3-$2 insn_tool=$INSN count=$COUNT ir_op=$ir_op syscalls_op=$sc_op" >> "$RAW"
}

# rotate N WORD...: the words, starting from the Nth (mod their count).
rotate() {
	n=$1; shift
	echo "$@" | awk -v r="$n" '{ for (i = 0; i < NF; i++) printf "%s ", $((i + r) % NF + 1) }'
}

PREFORKDS=preforkd
[ -z "${PREFORKD_BEFORE:-}" ] || PREFORKDS="preforkd preforkd-before"
ECHO_SYSTEMS="$PREFORKDS reference"
BEGAN=$(date +%s)
ROUND=1
while [ $ROUND -le "$ROUNDS" ]; do
	# The orders rotate, of the workloads and of the systems within each, so
	# that no system always runs first (or last) in a round or after another.
	for item in $(rotate $ROUND tcp:W3: tcp:W4: unix:W3: unix:W4: tcp:W3:1wpin tcp:W4:1wpin \
	    unix:W3:1wpin unix:W4:1wpin tcp:W4:c512); do
		IFS=: read -r fam wl variant <<EOF
$item
EOF
		for sys in $(rotate $ROUND $ECHO_SYSTEMS); do
			run_echo "$sys" "$fam" "$wl" "$variant"
		done
	done
	for sys in $(rotate $ROUND $PREFORKDS tcpserver xinetd socat spawn-only); do
		if [ "$sys" = spawn-only ]; then run_floor; else run_exec "$sys"; fi
	done
	for sys in $PREFORKDS; do
		run_fairness "$sys"
		run_reload_and_rss "$sys"
	done
	echo "run.sh: round $ROUND of $ROUNDS done ($(($(date +%s) - BEGAN)) s)" >&2
	ROUND=$((ROUND + 1))
done
for sys in $ECHO_SYSTEMS; do
	for fam in tcp unix; do
		for wl in W3 W4; do count_all "$sys" "$fam" "$wl"; done
	done
done
echo "run.sh: done in $(($(date +%s) - BEGAN)) s (instructions: $INSN; syscalls: ${SYSCOUNT:-not counted})" >&2

awk -f "$SRC/contrib/bench/report.awk" "$RAW" > "$OUT/table.md"
cat "$OUT/table.md"
if command -v gnuplot >/dev/null; then
	awk -f "$SRC/contrib/bench/report.awk" -v plot=1 "$RAW" > "$OUT/rates.dat"
	gnuplot -e "datafile='$OUT/rates.dat'; outfile='$OUT/bench.png'" "$SRC/contrib/bench/bench.gp"
	echo "chart: $OUT/bench.png"
fi
