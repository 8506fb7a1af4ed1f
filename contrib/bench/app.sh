#!/bin/bash
# SPDX-License-Identifier: ISC
# app.sh - a real app server (gunicorn) alone, as preforkd app workers and under the alternatives: throughput, reloads under load.
#
#   contrib/bench/app.sh [--quick] [-s SECONDS] [-o OUTDIR]
#
#   BUILD=DIR   preforkd is DIR/src/preforkd (default: this source tree);
#               copied at the start, so a rebuild meanwhile does not disturb the run
#   KEEP=1      keep the temporary directory (the servers' logs) and say where
#
# Issue 15 §6. Every system serves the same trivial WSGI app (200, "ok\n",
# Content-Length) with gunicorn's sync workers, 4 serving processes each:
#   alone         gunicorn --workers 4 --bind 127.0.0.1:PORT (gunicorn's own arbiter)
#   preforkd      preforkd, handler "app", workers = 4, each copy gunicorn --workers 1
#                 (it takes LISTEN_FDS by itself: no --bind)
#   start_server  start_server --port=127.0.0.1:PORT -- gunicorn --workers 4
#                 --bind fd://N (N from SERVER_STARTER_PORT), libserver-starter-perl
#   gunicorn-HUP  "alone" without --preload, reloaded by SIGHUP to its arbiter
#                 (gunicorn's own reload; with --preload its HUP would not load new
#                 code: the app stays imported in the arbiter)
# All with -c (an empty conf.py), the others with --preload (preforkd's READY=1
# then means the app is imported), the same clean environment (env -i
# PATH=/usr/bin:/bin) and, as root, a fresh network namespace per server
# instance (its own loopback: no TIME_WAIT sockets left by the run before, no
# other traffic on the port).
#
# 1. Throughput: alone, preforkd and start_server, ROUNDS rounds of wrk -t2 -c32
#    -dDUR --latency --timeout 5s, in an order that rotates every round, a fresh
#    server instance each time. Beside the median rate (min-max over the rounds)
#    and its ratio to alone: the server's CPU time per request, the user and
#    system time (utime+stime+cutime+cstime) of its whole process tree from
#    /proc, over the wrk run, and wrk's own (bash's time); the server's CPU in
#    units of wrk's (server and wrk use every CPU, so the rate follows the
#    machine's speed, which on a shared VM varies from run to run, wrk's cost per
#    request with it: this ratio does not); the machine's busy time that is
#    neither the server's nor wrk's (someone else's load) and its steal time.
# 2. Reloads under load: preforkd, start_server and gunicorn-HUP, each under wrk
#    -t2 -c32 --latency --timeout 5s, while RELOADS reloads are sent (the first
#    2 s in): SIGHUP, wait until that reload is done (up to 30 s), and at least
#    1.5 s (plus -s) from one SIGHUP to the next; 3 s after the last one is
#    done, SIGINT stops wrk, which then prints its results (-d, RCAP s, is only
#    a bound). Done means: preforkd logs "reload ok: generation K serving" (or
#    "reload failed"); start_server logs "killing old workers" (it does after
#    --interval, 1 s, whether the new gunicorn is ready or not); gunicorn has
#    logged 4 more "Booting worker" (at the fork, before the app is imported).
#    The same rule for all three, so preforkd, whose reloads take longest (four
#    gunicorns to start), gets the longest wrk run. Reported: the reloads done
#    while wrk ran, wrk's run time and requests, its failures
#    (socket errors connect/read/write/timeout and non-2xx responses), its p99
#    and maximum latency.
#
# The traffic stays on 127.0.0.1. Every server is started here and stopped here
# by its pid (SIGTERM; 15 s for it and 1 s more for its tree, then SIGKILL to
# what is left of the tree it had, by pid, checked against its start time).
# Writes markdown tables to stdout and OUTDIR/app-YYYY-MM-DD.md, wrk's outputs
# and the summary lines to OUTDIR/app-YYYY-MM-DD.raw (OUTDIR:
# contrib/bench/results; app-YYYY-MM-DD-quick.* with --quick, -sN added with
# -s). Installs gunicorn, wrk and libserver-starter-perl from Debian when they
# are missing (as root).
#
# -s SECONDS: the app sleeps that long when it is imported, as a real app takes
# time to load (seconds, for a big framework): what a reload costs when it does
# not wait for readiness. The SIGHUPs are then 1.5 + SECONDS s apart at least,
# so that every system's new generation has the time to come up. Default 0
# (the trivial app only).
#
# --quick: 1 round of 3 s, 5 reloads (about a minute). The full run (3 rounds
# of 10 s, 20 reloads) takes about 4 minutes on 2 cores, 6 with -s 2.
set -euo pipefail

ROUNDS=3
DUR=10
RELOADS=20
RCAP=150            # wrk's -d in the reload runs: a bound, SIGINT ends them
TAIL=3
CLIENTS=32
SPACING_MS=1500     # at least this long from one SIGHUP to the next
DONE_TIMEOUT_MS=30000
BOOT_DELAY=0
SRC=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$SRC/contrib/bench/results
NAME=app-$(date +%F)
if [ "${1:-}" = --quick ]; then
	ROUNDS=1 DUR=3 RELOADS=5 RCAP=60
	NAME=$NAME-quick
	shift
fi
while getopts o:s: opt; do
	case $opt in
	o) OUT=$OPTARG ;;
	s) BOOT_DELAY=$OPTARG ;;
	*) echo "usage: $0 [--quick] [-s SECONDS] [-o OUTDIR]" >&2; exit 2 ;;
	esac
done
case $BOOT_DELAY in
''|*[!0-9.]*|*.*.*) echo "app.sh: -s $BOOT_DELAY: not a number of seconds" >&2; exit 2 ;;
esac
[ "$BOOT_DELAY" = 0 ] || NAME=$NAME-s$BOOT_DELAY
SPACING_MS=$(awk -v d="$BOOT_DELAY" -v s=$SPACING_MS 'BEGIN { printf "%d", s + d * 1000 }')
BUILD=${BUILD:-$SRC}

tmp=$(mktemp -d /tmp/preforkd-appbench.XXXXXX)
SERVER=""       # the running server's pid
WRK=""          # a wrk running in the background
NSNAME=""
cleanup() {
	local e
	# A reload run's wrk (a throughput run's wrk is in the foreground, bounded by -d).
	[ -z "$WRK" ] || for e in $(tree "$WRK"); do kill "${e%%:*}" 2>/dev/null || true; done
	[ -z "$SERVER" ] || stop_server
	[ -z "$NSNAME" ] || ip netns del "$NSNAME" 2>/dev/null || true
	if [ -n "${KEEP:-}" ]; then echo "app.sh: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# What it needs, from Debian.
need=""
command -v /usr/bin/gunicorn >/dev/null || need="$need gunicorn"
command -v wrk >/dev/null || need="$need wrk"
command -v /usr/bin/start_server >/dev/null || need="$need libserver-starter-perl"
if [ -n "$need" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "app.sh: missing:$need (as root: apt-get install -y --no-install-recommends$need)" >&2
		exit 1
	fi
	echo "app.sh: installing$need" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $need >/dev/null
fi
GUNICORN=/usr/bin/gunicorn
START_SERVER=/usr/bin/start_server
WRKBIN=$(command -v wrk)

if [ ! -x "$BUILD/src/preforkd" ]; then
	echo "app.sh: $BUILD/src/preforkd is missing: build it first (or set BUILD=DIR)" >&2
	exit 1
fi
cp "$BUILD/src/preforkd" "$tmp/"
PREFORKD=$tmp/preforkd
# What it was built from, as far as the tree says now.
COMMIT=$(git -C "$BUILD" rev-parse --short HEAD 2>/dev/null || git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo "?")
[ -z "$(git -C "$BUILD" status --porcelain -- src 2>/dev/null)" ] || COMMIT="$COMMIT + uncommitted changes in src/"

# The app, and an empty config file (-c /dev/null works too, but each start
# then logs a 4-line warning that it has no Python extension).
APPDIR=$tmp/app
mkdir -p "$APPDIR"
cat > "$APPDIR/app.py" <<EOF
import time
time.sleep($BOOT_DELAY)

def application(environ, start_response):
    body = b"ok\n"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
EOF
: > "$APPDIR/conf.py"
GARGS=(-c "$APPDIR/conf.py" --chdir "$APPDIR")
CLEAN_ENV=(env -i PATH=/usr/bin:/bin)
HZ=$(getconf CLK_TCK)

mkdir -p "$OUT"
DAY=$(date +%F)
MD=$OUT/$NAME.md
RAW=$OUT/$NAME.raw
SUM=$tmp/summary    # one line of key=value per wrk run
: > "$RAW"
: > "$SUM"

# A network namespace per server instance, when we may make one.
USE_NETNS=""
if [ "$(id -u)" = 0 ] && ip netns add "pfapp-$$-0" 2>/dev/null; then
	ip netns del "pfapp-$$-0"
	USE_NETNS=1
else
	echo "app.sh: no network namespaces (not root?): every run on a fresh port of the host's loopback" >&2
fi
NS=()
NSNUM=0
PORT=$((20000 + $$ % 10000))
ns_up() {
	if [ -n "$USE_NETNS" ]; then
		NSNUM=$((NSNUM + 1))
		NSNAME=pfapp-$$-$NSNUM
		ip netns add "$NSNAME"
		NS=(ip netns exec "$NSNAME")
		"${NS[@]}" ip link set lo up
		return
	fi
	# Below the ephemeral range; one nobody listens on.
	PORT=$((PORT + 1))
	while [ -n "$(ss -Htln "sport = :$PORT")" ]; do PORT=$((PORT + 1)); done
}
ns_down() {
	[ -n "$NSNAME" ] || return 0
	ip netns del "$NSNAME"
	NSNAME=""
	NS=()
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# tree PID: "pid:starttime" of PID and every descendant.
tree() {
	local queue=$1 p stat f
	while [ -n "${queue// /}" ]; do
		set -- $queue
		p=$1; shift; queue="$*"
		stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		f=(${stat##*") "})
		echo "$p:${f[19]}"
		queue="$queue $(cat /proc/"$p"/task/*/children 2>/dev/null || true)"
	done
}

. "$SRC/contrib/bench/common.sh"	# tree_ticks

# start_system SYSTEM: starts it in the background, in the run's namespace
# and clean environment; SERVER is its pid, LOG its output.
start_system() {
	ns_up
	LOG=$tmp/$1.$NSNUM.$PORT.log
	: > "$LOG"
	case $1 in
	alone|gunicorn-HUP)
		pre=(--preload)
		[ "$1" = alone ] || pre=()
		"${NS[@]}" "${CLEAN_ENV[@]}" "$GUNICORN" "${GARGS[@]}" "${pre[@]}" --workers 4 \
			--bind "127.0.0.1:$PORT" app:application > "$LOG" 2>&1 &
		;;
	preforkd)
		{
			echo "control-socket = \"$tmp/control.sock\""
			echo 'log-level = "info"'
			echo 'service web {'
			echo "    listen  = { \"127.0.0.1:$PORT\" }"
			echo '    handler = "app"'
			printf '    exec    = { "%s"' "$GUNICORN"
			printf ', "%s"' "${GARGS[@]}" --preload --workers 1 app:application
			echo ' }'
			echo '    workers = 4'
			echo '}'
		} > "$tmp/preforkd.conf"
		"${NS[@]}" "${CLEAN_ENV[@]}" "$PREFORKD" -c "$tmp/preforkd.conf" > "$LOG" 2>&1 &
		;;
	start_server)
		# SERVER_STARTER_PORT=127.0.0.1:PORT=FD; exec, so that start_server's
		# TERM reaches gunicorn's arbiter.
		"${NS[@]}" "${CLEAN_ENV[@]}" "$START_SERVER" --port="127.0.0.1:$PORT" -- /bin/sh -c \
			'exec "$0" --bind "fd://${SERVER_STARTER_PORT##*=}" "$@"' \
			"$GUNICORN" "${GARGS[@]}" --preload --workers 4 app:application > "$LOG" 2>&1 &
		;;
	esac
	SERVER=$!
	wait_ready "$1"
}

http_ok() {
	"${NS[@]}" timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$PORT"' &&
		printf "GET / HTTP/1.0\r\n\r\n" >&3 && head -c 12 <&3' 2>/dev/null | grep -q '^HTTP/1\.[01] 200'
}

# Up means: the 4 sync workers have booted (and preforkd says ready), and / answers 200.
wait_ready() {
	local i=0
	while :; do
		if [ "$(grep -c 'Booting worker with pid' "$LOG" || true)" -ge 4 ] &&
		   { [ "$1" != preforkd ] || grep -q 'ready: ' "$LOG"; } && http_ok; then
			return 0
		fi
		if ! kill -0 "$SERVER" 2>/dev/null || [ $i -ge 300 ]; then
			echo "app.sh: $1 did not come up; its log:" >&2
			tail -20 "$LOG" >&2
			exit 1
		fi
		i=$((i + 1)); sleep 0.1
	done
}

stop_server() {
	local snap left i=0 e p st f
	snap=$(tree "$SERVER")
	kill -TERM "$SERVER" 2>/dev/null || true
	# Until it has exited (a zombie until we wait for it), 15 s at most; then
	# 1 s more for the rest of its tree.
	while [ -d "/proc/$SERVER" ] && [ "$(awk '{ print $3 }' "/proc/$SERVER/stat" 2>/dev/null)" != Z ] && [ $i -lt 150 ]; do
		i=$((i + 1)); sleep 0.1
	done
	for i in $(seq 10); do
		left=""
		for e in $snap; do
			p=${e%%:*} st=${e#*:}
			[ "$p" != "$SERVER" ] || continue
			f=($(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null)) || continue
			[ "${#f[@]}" -gt 19 ] && [ "${f[19]}" = "$st" ] && [ "${f[0]}" != Z ] || continue
			left="$left $p"
		done
		[ -n "$left" ] || break
		sleep 0.1
	done
	for p in $left; do
		echo "app.sh: pid $p of the server's tree still there: SIGKILL" >&2
		kill -KILL "$p" 2>/dev/null || true
	done
	if [ "$(awk '{ print $3 }' "/proc/$SERVER/stat" 2>/dev/null)" != Z ] && [ -d "/proc/$SERVER" ]; then
		echo "app.sh: server pid $SERVER did not stop: SIGKILL" >&2
		kill -KILL "$SERVER" 2>/dev/null || true
	fi
	wait "$SERVER" 2>/dev/null || true
	SERVER=""
	ns_down
}

# wrk_fields FILE: key=value of one wrk output.
wrk_fields() {
	awk '
	function ms(v) {
		if (v ~ /us$/) return v * 0.001
		if (v ~ /ms$/) return v + 0
		if (v ~ /m$/) return v * 60000
		if (v ~ /s$/) return v * 1000
		return v + 0
	}
	/^ +Latency +[0-9]/ { max = ms($4) }
	/^ +50% / { p50 = ms($2) }
	/^ +99% / { p99 = ms($2) }
	/ requests in / { req = $1; secs = $4; sub(/,$/, "", secs); secs = ms(secs) / 1000 }
	/Socket errors:/ { gsub(/,/, ""); c = $4; r = $6; w = $8; t = $10 }
	/Non-2xx or 3xx responses:/ { n = $NF }
	/^Requests\/sec:/ { rate = $2 }
	END {
		printf "requests=%d secs=%.2f rate=%.0f connect=%d read=%d write=%d timeout=%d non2xx=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f",
		       req, secs, rate, c, r, w, t, n, p50, p99, max
	}' "$1"
}

wrk_cmd() { # DURATION: wrk in the namespace and the clean environment (ip and env exec it)
	echo "${NS[@]}" "${CLEAN_ENV[@]}" "$WRKBIN" -t2 -c"$CLIENTS" -d"$1"s --latency --timeout 5s "http://127.0.0.1:$PORT/"
}

run_wrk() { # DURATION OUTFILE: wrk, its CPU time in OUTFILE.time
	local TIMEFORMAT='%3U %3S'
	{ time $(wrk_cmd "$1") > "$2" 2>&1 ; } 2> "$2.time"
}

alive() { [ -d "/proc/$1" ] && [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

raw() { # TITLE FILE
	{ echo "### $1"; cat "$2"; echo; } >> "$RAW"
}

# 1. Throughput.
# The machine's busy and steal ticks (/proc/stat): what the server and wrk do
# not account for is someone else's load, or the hypervisor's.
cpu_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8, $9 }' /proc/stat; }

throughput() { # SYSTEM ROUND
	local out=$tmp/wrk.$1.$2 t0 t1 c0 c1 wcpu line other steal
	start_system "$1"
	c0=$(cpu_ticks)
	t0=$(tree_ticks "$SERVER")
	run_wrk "$DUR" "$out"
	t1=$(tree_ticks "$SERVER")
	c1=$(cpu_ticks)
	stop_server
	wcpu=$(awk '{ printf "%.3f", $1 + $2 }' "$out.time")
	line=$(wrk_fields "$out")
	other=$(awk -v a="$c0" -v b="$c1" -v s=$((t1 - t0)) -v w="$wcpu" -v hz="$HZ" \
		'BEGIN { split(a, x, " "); split(b, y, " "); o = (y[1] - x[1] - s) / hz - w; printf "%.2f", o < 0 ? 0 : o }')
	steal=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.2f", (y[2] - x[2]) / hz }')
	echo "phase=rate system=$1 round=$2 $line srv_ticks=$((t1 - t0)) wrk_cpu_s=$wcpu other_cpu_s=$other steal_s=$steal" >> "$SUM"
	raw "rate $1 round $2 (server CPU $((t1 - t0)) ticks of 1/$HZ s, wrk CPU $wcpu s, others $other s, steal $steal s)" "$out"
	echo "app.sh: rate round $2 $1: $line" >&2
}

# 2. Reloads under load.
reload_done() { # SYSTEM K: is reload K over?
	case $1 in
	preforkd)     [ "$(grep -c -e 'reload ok: generation' -e 'reload failed' "$LOG" || true)" -ge "$2" ] ;;
	start_server) [ "$(grep -c 'killing old workers' "$LOG" || true)" -ge "$2" ] ;;
	gunicorn-HUP) [ "$(grep -c 'Booting worker with pid' "$LOG" || true)" -ge $((4 * ($2 + 1))) ] ;;
	esac
}

reloads() { # SYSTEM
	local out=$tmp/wrk.reload.$1 t_start t_end k t_hup t sent=0 done=0 late=0 gaveup=0 line extra=""
	start_system "$1"
	t_start=$(now_ms)
	$(wrk_cmd "$RCAP") > "$out" 2>&1 &
	WRK=$!
	t_end=$((t_start + RCAP * 1000))
	sleep 2
	for k in $(seq 1 "$RELOADS"); do
		t_hup=$(now_ms)
		[ "$t_hup" -lt "$t_end" ] || break
		kill -HUP "$SERVER"
		sent=$k
		until reload_done "$1" "$k"; do
			if [ $(($(now_ms) - t_hup)) -ge $DONE_TIMEOUT_MS ]; then gaveup=1; break; fi
			sleep 0.02
		done
		[ $gaveup = 0 ] || break
		t=$(now_ms)
		if [ "$t" -lt "$t_end" ]; then done=$((done + 1)); else late=$((late + 1)); fi
		t=$((t_hup + SPACING_MS - $(now_ms)))
		[ "$t" -le 0 ] || sleep "$(awk -v t="$t" 'BEGIN { printf "%.3f", t / 1000 }')"
	done
	sleep $TAIL
	# wrk stops on SIGINT and prints what it has (its main thread takes it, and
	# sleeps till -d otherwise).
	if alive "$WRK" && [ "$(cat "/proc/$WRK/comm" 2>/dev/null)" = wrk ]; then
		kill -INT "$WRK"
	fi
	wait "$WRK" || true
	WRK=""
	sleep 0.5
	case $1 in
	preforkd)
		extra="reload_failed=$(grep -c 'reload failed' "$LOG" || true)"
		extra="$extra reload_ms=$(sed -n 's/.*reload ok: generation [0-9]* serving (\([0-9]*\) ms).*/\1/p' "$LOG" |
			sort -n | awk '{ a[NR] = $1 } END { if (NR) printf "%d/%d", a[int((NR + 1) / 2)], a[NR]; else printf "-" }')" ;;
	start_server)
		extra="failed_start=$(grep -c 'seems to have failed to start' "$LOG" || true)" ;;
	gunicorn-HUP)
		extra="hup_seen=$(grep -c 'Hang up: Master' "$LOG" || true)" ;;
	esac
	stop_server
	line=$(wrk_fields "$out")
	echo "phase=reload system=$1 $line reloads_sent=$sent reloads_done=$done reloads_late=$late gave_up=$gaveup $extra" >> "$SUM"
	raw "reloads $1 ($done reloads done under load, $late after wrk ended, gave up: $gaveup; $extra)" "$out"
	echo "app.sh: reloads $1: done=$done late=$late $line $extra" >&2
	cp "$LOG" "$tmp/reload-$1.log"
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
T0=$(date +%s)
SYSTEMS=(alone preforkd start_server)
for round in $(seq 1 "$ROUNDS"); do
	for i in 0 1 2; do
		throughput "${SYSTEMS[$(((i + round - 1) % 3))]}" "$round"
	done
done
for s in preforkd start_server gunicorn-HUP; do
	reloads "$s"
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$(($(date +%s) - T0))

# The report.
{
	echo "## App workers: gunicorn alone, behind preforkd, under start_server ($DAY)"
	echo
	echo "$(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), Linux $(uname -r);" \
	     "gunicorn $(dpkg-query -W -f '${Version}' gunicorn 2>/dev/null), wrk $(dpkg-query -W -f '${Version}' wrk 2>/dev/null)," \
	     "libserver-starter-perl $(dpkg-query -W -f '${Version}' libserver-starter-perl 2>/dev/null); preforkd $COMMIT."
	echo "Load average before/after: $LOAD0 / $LOAD1; $ELAPSED s in all."
	echo "4 serving processes (gunicorn sync workers) in every system, --preload but for gunicorn-HUP;" \
	     "the app $([ "$BOOT_DELAY" = 0 ] && echo "imports at once" || echo "sleeps $BOOT_DELAY s when imported");" \
	     "wrk -t2 -c$CLIENTS --timeout 5s on 127.0.0.1$([ -z "$USE_NETNS" ] || echo ", a network namespace per server instance")."
	echo
	echo "Throughput: $ROUNDS round(s) of ${DUR} s, order rotating per round, median (min-max); server CPU from /proc over its whole process tree;" \
	     "others: the machine's busy time (/proc/stat) not the server's or wrk's, that is other load, steal: the hypervisor's (per run, of $(nproc) × ${DUR} s)." \
	     "Server and wrk together use every CPU, so the rate follows the machine's speed, which varies here from run to run (wrk's own cost per request with it);" \
	     "server ÷ wrk CPU is the server's cost in units of the client's, which does not."
	echo
	awk -v hz="$HZ" '
	function kv(k,   i, a) { for (i = 1; i <= NF; i++) { split($i, a, "="); if (a[1] == k) return substr($i, length(k) + 2) } return "" }
	function med(s,   n, a, i, j, t) {
		n = split(s, a, " ")
		for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
		lo = a[1]; hi = a[n]
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	$0 ~ /phase=rate/ {
		s = kv("system"); r = kv("round"); req = kv("requests")
		rate[s] = rate[s] " " kv("rate"); byround[s, r] = kv("rate")
		scpu[s] = scpu[s] " " (req ? kv("srv_ticks") * 1e6 / hz / req : 0)
		wcpu[s] = wcpu[s] " " (req ? kv("wrk_cpu_s") * 1e6 / req : 0)
		p99[s] = p99[s] " " kv("p99_ms")
		oth[s] = oth[s] " " kv("other_cpu_s"); stl[s] = stl[s] " " kv("steal_s")
		sw[s] = sw[s] " " (kv("wrk_cpu_s") > 0 ? kv("srv_ticks") / hz / kv("wrk_cpu_s") : 0)
		fail[s] += kv("connect") + kv("read") + kv("write") + kv("timeout") + kv("non2xx")
		rounds[r] = 1
	}
	END {
		n = split("alone preforkd start_server", sys, " ")
		am = med(rate["alone"]); asw = med(sw["alone"])
		print "| system | rate (req/s) | × alone | same-round × alone | server CPU (µs/req) | wrk CPU (µs/req) | server ÷ wrk CPU (× alone) | p99 (ms) | failed | others / steal (CPU s) |"
		print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
		for (i = 1; i <= n; i++) {
			s = sys[i]
			m = med(rate[s]); mlo = lo; mhi = hi
			rr = ""
			for (r in rounds) if (byround["alone", r] > 0) rr = rr " " byround[s, r] / byround["alone", r]
			rm = med(rr); rlo = lo; rhi = hi
			x = med(sw[s])
			printf "| %s | %.0f (%.0f-%.0f) | %.3f | %s | %.1f | %.1f | %.3f (%.3f) | %.2f | %d | %.1f (max %.1f) / %.1f |\n", s, m, mlo, mhi,
			       am ? m / am : 0, s == "alone" ? "1" : sprintf("%.3f (%.3f-%.3f)", rm, rlo, rhi),
			       med(scpu[s]), med(wcpu[s]), x, asw ? x / asw : 0, med(p99[s]), fail[s], med(oth[s]), hi, med(stl[s])
		}
	}' "$SUM"
	echo
	echo "Reloads under load: $RELOADS SIGHUPs, the first 2 s into the wrk run, each once the one before is done and at least $((SPACING_MS / 1000)).$((SPACING_MS % 1000 / 100)) s after it; wrk stopped $TAIL s after the last one is done."
	echo
	awk '
	function kv(k,   i, a) { for (i = 1; i <= NF; i++) { split($i, a, "="); if (a[1] == k) return substr($i, length(k) + 2) } return "" }
	BEGIN {
		print "| system | reloads done | wrk run (s) | requests (req/s) | failed (connect/read/write/timeout/non-2xx) | p99 (ms) | max latency (ms) | notes |"
		print "|---|---:|---:|---:|---|---:|---:|---|"
	}
	$0 ~ /phase=reload/ {
		s = kv("system")
		f = kv("connect") + kv("read") + kv("write") + kv("timeout") + kv("non2xx")
		note = ""
		if (s == "preforkd") note = "reload time median/max " kv("reload_ms") " ms; reloads failed: " kv("reload_failed")
		if (s == "start_server") note = "old generation TERMed 1 s after the new one started (--interval); failed starts: " kv("failed_start")
		if (s == "gunicorn-HUP") note = "old workers TERMed as the new ones are forked; HUPs logged: " kv("hup_seen")
		if (kv("reloads_late") > 0) note = note "; " kv("reloads_late") " more done after wrk ended"
		if (kv("gave_up") > 0) note = note "; a reload not done in 30 s: gave up"
		printf "| %s | %d of %d | %.1f | %d (%d) | **%d** (%d/%d/%d/%d/%d) | %.2f | %.2f | %s |\n", s, kv("reloads_done"), '"$RELOADS"', kv("secs"), kv("requests"), kv("rate"),
		       f, kv("connect"), kv("read"), kv("write"), kv("timeout"), kv("non2xx"), kv("p99_ms"), kv("max_ms"), note
	}' "$SUM"
	echo
	echo "Raw wrk outputs: $(basename "$RAW")."
} > "$MD"
{ echo; echo "### summary lines"; cat "$SUM"; } >> "$RAW"
cat "$MD"
echo "app.sh: wrote $MD and $RAW" >&2
