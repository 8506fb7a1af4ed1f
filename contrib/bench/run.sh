#!/bin/sh
# SPDX-License-Identifier: ISC
# run.sh - preforkd against its alternatives, round by round, on loopback and unix sockets.
#
#   contrib/bench/run.sh [-r ROUNDS] [-d SECONDS] [-w WORKERS] [-o OUTDIR]
#
# Installs its peers from Debian (xinetd, ucspi-tcp, socat, gnuplot) when run
# as root, builds preforkd and the bench tools, then for every round runs
# each system on its own loopback port or unix socket in a temp dir, with the
# same worker count, one after the other in an order that rotates every
# round. Every server is started here and stopped here, by its pid. Prints a
# markdown table of medians (and ratios to the reference server taken in the
# same round), and draws OUTDIR/bench.png.
set -eu

ROUNDS=5
SECONDS_PER_RUN=5
WORKERS=2
CLIENTS=32
OUT=contrib/bench/results
while getopts r:d:w:o: opt; do
	case $opt in
	r) ROUNDS=$OPTARG ;;
	d) SECONDS_PER_RUN=$OPTARG ;;
	w) WORKERS=$OPTARG ;;
	o) OUT=$OPTARG ;;
	*) echo "usage: $0 [-r ROUNDS] [-d SECONDS] [-w WORKERS] [-o OUTDIR]" >&2; exit 2 ;;
	esac
done

SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$SRC/_bench_build}
TMP=$(mktemp -d /tmp/preforkd-bench.XXXXXX)
PIDS=""
cleanup() {
	for pid in $PIDS; do kill "$pid" 2>/dev/null || true; done
	[ -n "${KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

if [ "$(id -u)" = 0 ] && ! command -v tcpserver >/dev/null; then
	apt-get install -y -q xinetd ucspi-tcp socat gnuplot-nox >/dev/null
fi
for tool in tcpserver xinetd socat; do
	command -v $tool >/dev/null || { echo "run.sh: $tool is missing (apt-get install xinetd ucspi-tcp socat)" >&2; exit 1; }
done

if [ ! -x "$BUILD/src/preforkd" ]; then
	(cd "$SRC" && [ -x configure ] || autoreconf -fi >/dev/null)
	mkdir -p "$BUILD"
	(cd "$BUILD" && "$SRC/configure" CFLAGS=-O2 >/dev/null && make -j"$(nproc)" >/dev/null)
fi
PREFORKD=$BUILD/src/preforkd
LOADGEN=$BUILD/contrib/bench/loadgen
REFSERVER=$BUILD/contrib/bench/refserver
SPAWNFLOOR=$BUILD/contrib/bench/spawnfloor
mkdir -p "$OUT"
RAW=$OUT/raw.txt
: > "$RAW"

# Below the ephemeral range (32768-60999), where the clients' own ports would collide.
PORT=$((20000 + $$ % 10000))
next_port() { PORT=$((PORT + 1)); }

# Waits until ADDRESS answers a connection, for 5 s at most.
wait_up() {
	i=0
	until "$LOADGEN" -c 1 -d 1 "$1" 2>/dev/null | grep -q 'ops=[1-9]'; do
		i=$((i + 1)); [ $i -lt 5 ] || { echo "run.sh: $1 did not come up" >&2; return 1; }
	done
}

# start NAME COMMAND...: in the background, its pid remembered for the stop.
start() {
	name=$1; shift
	"$@" >"$TMP/$name.log" 2>&1 &
	SERVER=$!
	PIDS="$PIDS $SERVER"
}

stop() {
	kill "$SERVER" 2>/dev/null || true
	wait "$SERVER" 2>/dev/null || true
}

# measure SYSTEM WORKLOAD MODE ADDRESS: one loadgen run, one line of raw results.
measure() {
	line=$("$LOADGEN" -m "$3" -c "$CLIENTS" -d "$SECONDS_PER_RUN" "$4")
	echo "round=$ROUND system=$1 workload=$2 $line" >> "$RAW"
}

preforkd_conf() { # ADDRESS HANDLER EXTRA
	cat > "$TMP/p.conf" <<EOF
log-level = "debug"
service bench {
    listen = { "$1" }
    handler = "$2"
    workers = $WORKERS
    max-connections = 10000
$3
}
EOF
}

run_echo() { # SYSTEM FAMILY
	next_port
	if [ "$2" = tcp ]; then addr=127.0.0.1:$PORT; else addr=unix:$TMP/$1.sock; fi
	case $1 in
	preforkd) preforkd_conf "$addr" echo ""; start preforkd "$PREFORKD" -c "$TMP/p.conf" ;;
	reference) start reference "$REFSERVER" -w "$WORKERS" "$addr" ;;
	esac
	wait_up "$addr"
	measure "$1" "W3-$2" conn "$addr"
	measure "$1" "W4-$2" persist "$addr"
	stop
}

run_exec() { # SYSTEM
	next_port
	addr=127.0.0.1:$PORT
	case $1 in
	preforkd) preforkd_conf "$addr" exec '    exec = { "/bin/cat" }
    exec-stderr = "null"'
		start preforkd "$PREFORKD" -c "$TMP/p.conf" ;;
	tcpserver) start tcpserver tcpserver -c 10000 -H -R -l 0 127.0.0.1 "$PORT" /bin/cat ;;
	socat) start socat socat "TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr,fork,backlog=511" EXEC:/bin/cat ;;
	xinetd)
		cat > "$TMP/xinetd.conf" <<EOF
defaults
{
    instances = UNLIMITED
    per_source = UNLIMITED
    cps = 1000000 1
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
		start xinetd xinetd -dontfork -f "$TMP/xinetd.conf" -pidfile "$TMP/xinetd.pid" ;;
	esac
	wait_up "$addr"
	measure "$1" W3-exec conn "$addr"
	stop
}

# The same helper run with no server and no network, as many at once as
# there are clients: the rate no exec-style server can pass on this machine.
run_floor() {
	line=$("$SPAWNFLOOR" -p "$CLIENTS" -d "$SECONDS_PER_RUN" /bin/cat)
	echo "round=$ROUND system=spawn-only workload=W3-exec $line" >> "$RAW"
}

# Fairness: 4 preforkd workers under W3; each logs what it served at exit.
run_fairness() {
	next_port
	addr=127.0.0.1:$PORT
	WORKERS_SAVED=$WORKERS; WORKERS=4
	preforkd_conf "$addr" echo ""
	WORKERS=$WORKERS_SAVED
	start fairness "$PREFORKD" -c "$TMP/p.conf"
	wait_up "$addr"
	"$LOADGEN" -m conn -c "$CLIENTS" -d "$SECONDS_PER_RUN" "$addr" >/dev/null
	stop
	counts=$(sed -n 's/.*exiting: \([0-9]*\) connections served.*/\1/p' "$TMP/fairness.log" | sort -n)
	echo "round=$ROUND system=preforkd workload=fairness served=$(echo $counts | tr ' ' ,)" >> "$RAW"
}

# Reload time (the master's own "reload ok (N ms)") and idle RSS.
run_reload_and_rss() {
	next_port
	addr=127.0.0.1:$PORT
	preforkd_conf "$addr" echo ""
	start reload "$PREFORKD" -c "$TMP/p.conf"
	wait_up "$addr"
	master=$SERVER
	rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
	workers=$(cat "/proc/$master/task/$master/children")
	echo "round=$ROUND system=preforkd workload=rss master_kib=$(rss "$master") workers_kib=$(for w in $workers; do rss "$w"; done | tr '\n' , | sed 's/,$//')" >> "$RAW"
	for i in 1 2 3 4 5; do
		kill -HUP "$master"
		n=0
		until [ "$(grep -c 'reload ok' "$TMP/reload.log")" -ge $i ]; do
			n=$((n + 1)); [ $n -lt 100 ] || break; sleep 0.1
		done
	done
	ms=$(sed -n 's/.*reload ok: generation [0-9]* serving (\([0-9]*\) ms).*/\1/p' "$TMP/reload.log" | tr '\n' , | sed 's/,$//')
	echo "round=$ROUND system=preforkd workload=reload ms=$ms" >> "$RAW"
	stop
}

# rotate N WORD...: the words, starting from the Nth (mod their count).
rotate() {
	n=$1; shift
	echo "$@" | awk -v r="$n" '{ for (i = 0; i < NF; i++) printf "%s ", $((i + r) % NF + 1) }'
}

ROUND=1
while [ $ROUND -le "$ROUNDS" ]; do
	# The order rotates, so that no system always runs first (or last) in a round.
	for item in $(rotate $ROUND preforkd:tcp reference:tcp preforkd:unix reference:unix); do
		run_echo "${item%%:*}" "${item##*:}"
	done
	for sys in $(rotate $ROUND preforkd tcpserver xinetd socat spawn-only); do
		if [ "$sys" = spawn-only ]; then run_floor; else run_exec "$sys"; fi
	done
	run_fairness
	run_reload_and_rss
	ROUND=$((ROUND + 1))
done

awk -f "$SRC/contrib/bench/report.awk" "$RAW" > "$OUT/table.md"
cat "$OUT/table.md"
if command -v gnuplot >/dev/null; then
	awk -f "$SRC/contrib/bench/report.awk" -v plot=1 "$RAW" | sort > "$OUT/rates.dat"
	gnuplot -e "datafile='$OUT/rates.dat'; outfile='$OUT/bench.png'" "$SRC/contrib/bench/bench.gp"
	echo "chart: $OUT/bench.png"
fi
