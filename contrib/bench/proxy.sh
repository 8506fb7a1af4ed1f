#!/bin/bash
# SPDX-License-Identifier: ISC
# proxy.sh - preforkd's proxy handler against HAProxy, nginx stream, socat and systemd-socket-proxyd, forwarding to one echo server.
#
#   contrib/bench/proxy.sh [-r ROUNDS] [-s SECONDS] [-b BYTES] [-o OUTDIR]
#
#   BUILD=DIR   preforkd is DIR/src/preforkd (default: this source tree); the
#               tools are DIR/contrib/bench/{loadgen,bulk,refserver}
#   KEEP=1      keep the temporary directory (configs, logs) and say where
#
# Issue 19 §4. Each system listens on 127.0.0.1 and forwards to the same
# back end, the reference echo server (refserver -w 2), with 2 workers where
# it has workers:
#   preforkd      handler "proxy", workers = 2 (splice through pipes)
#   haproxy       Debian's HAProxy, mode tcp, nbthread 2
#   nginx         Debian's nginx 1.22, stream module, worker_processes 2
#   socat         TCP-LISTEN,fork: a process per connection (no pool)
#   socket-proxyd systemd-socket-proxyd under systemd-socket-activate: one
#                 process, one thread (it has no workers)
# and is measured, one after the other, fresh for each:
#   W3    loadgen -m conn -c 32 -d SECONDS: connect, 16 bytes there and back, close
#   W4    loadgen -m persist -c 32 -d SECONDS: 16-byte ping-pong on 32 connections
#   bulk  bulk -c 1 and -c 32 -b BYTES (1 GiB): streamed through and back, every
#         byte checked
# Reported: rates and p99 (W3, W4), MB/s (bulk, bytes sent per second), and
# the system's own CPU time (utime+stime of its process tree, exited children
# included) per operation or per GB forwarded (both directions counted: a
# byte sent and its echo are 2 bytes through the proxy). The clients' own
# CPU is not the system's. Traffic stays on 127.0.0.1; every process is
# started here and stopped by its pid. Installs haproxy, nginx-light,
# libnginx-mod-stream, socat and systemd (for systemd-socket-proxyd) from
# Debian when missing (as root). ROUNDS (3) rounds, the order of the systems
# rotating each round, a fresh instance each time; each figure is the median
# of its rounds (min-max beside the rates). On a shared 2-core VM, compare CPU
# per operation more than rates.
set -euo pipefail

SECONDS_RUN=5
BYTES=$((1 << 30))
ROUNDS=3
OUT=
while getopts r:s:b:o: opt; do
	case $opt in
	r) ROUNDS=$OPTARG ;;
	s) SECONDS_RUN=$OPTARG ;;
	b) BYTES=$OPTARG ;;
	o) OUT=$OPTARG ;;
	*) echo "usage: $0 [-r ROUNDS] [-s SECONDS] [-b BYTES] [-o OUTDIR]" >&2; exit 2 ;;
	esac
done
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$SRC}
OUT=${OUT:-$SRC/contrib/bench/results}
. "$SRC/contrib/bench/common.sh"	# tree_ticks
for f in src/preforkd contrib/bench/loadgen contrib/bench/bulk contrib/bench/refserver; do
	[ -x "$BUILD/$f" ] || { echo "proxy.sh: $BUILD/$f is not built (make)" >&2; exit 1; }
done
need=()
[ -x /usr/sbin/haproxy ] || need+=(haproxy)
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || need+=(nginx-light libnginx-mod-stream)
command -v socat >/dev/null || need+=(socat)
[ -x /lib/systemd/systemd-socket-proxyd ] || need+=(systemd)
[ ${#need[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}" >/dev/null

tmp=$(mktemp -d /tmp/preforkd-proxy-bench.XXXXXX)
cp "$BUILD/src/preforkd" "$tmp/preforkd"
SERVER= BACK=
# stop PID: SIGTERM to a process started here, SIGKILL to its tree 5 s later.
stop() {
	local p=$1 i
	[ -n "$p" ] && kill -TERM "$p" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null || true; return 0; }
		sleep 0.05
	done
	kill -KILL "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}
cleanup() {
	stop "$SERVER"
	stop "$BACK"
	if [ -n "${KEEP:-}" ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# listening PORT: someone accepts on 127.0.0.1:PORT (within 10 s).
listening() {
	local i
	for ((i = 0; i < 200; i++)); do
		ss -Hltn "sport = :$1" | grep -q LISTEN && return 0
		sleep 0.05
	done
	echo "proxy.sh: nothing listens on 127.0.0.1:$1" >&2
	return 1
}

BACK_PORT=$(free_port)
"$BUILD/contrib/bench/refserver" -w 2 "127.0.0.1:$BACK_PORT" > "$tmp/refserver.log" 2>&1 &
BACK=$!
listening "$BACK_PORT"

# start SYSTEM PORT: SERVER is its pid.
start() {
	local sys=$1 port=$2
	case $sys in
	preforkd)
		cat > "$tmp/preforkd.conf" <<-EOF
		control-socket = ""
		log-level = "warning"
		service p {
		    listen = { "127.0.0.1:$port" }
		    handler = "proxy"
		    upstream = { "127.0.0.1:$BACK_PORT" }
		    workers = 2
		    max-connections = 4096
		}
		EOF
		"$tmp/preforkd" -c "$tmp/preforkd.conf" > "$tmp/preforkd.log" 2>&1 &
		;;
	haproxy)
		cat > "$tmp/haproxy.cfg" <<-EOF
		global
		    nbthread 2
		    maxconn 8000
		defaults
		    mode tcp
		    timeout connect 2s
		    timeout client 60s
		    timeout server 60s
		frontend f
		    bind 127.0.0.1:$port
		    default_backend b
		backend b
		    server s1 127.0.0.1:$BACK_PORT
		EOF
		/usr/sbin/haproxy -db -f "$tmp/haproxy.cfg" > "$tmp/haproxy.log" 2>&1 &
		;;
	nginx)
		cat > "$tmp/nginx.conf" <<-EOF
		load_module /usr/lib/nginx/modules/ngx_stream_module.so;
		daemon off;
		pid $tmp/nginx.pid;
		error_log $tmp/nginx.log warn;
		worker_processes 2;
		worker_rlimit_nofile 16384;
		events { worker_connections 8192; }
		stream {
		    server {
		        listen 127.0.0.1:$port reuseport backlog=511;
		        proxy_pass 127.0.0.1:$BACK_PORT;
		    }
		}
		EOF
		/usr/sbin/nginx -c "$tmp/nginx.conf" -p "$tmp" > "$tmp/nginx.out" 2>&1 &
		;;
	socat)
		socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork,backlog=511" \
			"TCP:127.0.0.1:$BACK_PORT" > "$tmp/socat.log" 2>&1 &
		;;
	socket-proxyd)
		systemd-socket-activate -l "127.0.0.1:$port" /lib/systemd/systemd-socket-proxyd \
			"127.0.0.1:$BACK_PORT" > "$tmp/socket-proxyd.log" 2>&1 &
		;;
	esac
	SERVER=$!
	listening "$port"
}

field() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
# errors LINE: its count of errors; a run that printed nothing counts as one.
errors() { local v; v=$(field errors "$1"); echo "${v:-1}"; }

# run SYSTEM: its row of the table.
results=()
run() {
	local sys=$1 port t0 t1 w3 w4 b1 b32 hz
	hz=$(getconf CLK_TCK)
	port=$(free_port)
	start "$sys" "$port"
	t0=$(tree_ticks "$SERVER")
	w3=$("$BUILD/contrib/bench/loadgen" -m conn -c 32 -d "$SECONDS_RUN" "127.0.0.1:$port")
	t1=$(tree_ticks "$SERVER")
	w3cpu=$(echo "($t1 - $t0) * 1000000 / $hz / $(field ops "$w3")" | bc -l)
	t0=$t1
	w4=$("$BUILD/contrib/bench/loadgen" -m persist -c 32 -d "$SECONDS_RUN" "127.0.0.1:$port")
	t1=$(tree_ticks "$SERVER")
	w4cpu=$(echo "($t1 - $t0) * 1000000 / $hz / $(field ops "$w4")" | bc -l)
	t0=$t1
	b1=$("$BUILD/contrib/bench/bulk" -c 1 -b "$BYTES" "127.0.0.1:$port") || true
	t1=$(tree_ticks "$SERVER")
	b1cpu=$(echo "($t1 - $t0) / $hz / (2 * $BYTES / 1000000000)" | bc -l)
	t0=$t1
	b32=$("$BUILD/contrib/bench/bulk" -c 32 -b "$BYTES" "127.0.0.1:$port") || true
	t1=$(tree_ticks "$SERVER")
	b32cpu=$(echo "($t1 - $t0) / $hz / (2 * $BYTES / 1000000000)" | bc -l)
	stop "$SERVER"
	SERVER=
	echo "$sys W3: $w3" >&2
	echo "$sys W4: $w4" >&2
	echo "$sys bulk 1: $b1" >&2
	echo "$sys bulk 32: $b32" >&2
	printf '%s %s %s %s %s %s %s %s %s %s %s\n' "$(field rate "$w3")" "$(field p99_us "$w3")" \
		"$w3cpu" "$(field rate "$w4")" "$(field p99_us "$w4")" "$w4cpu" "$(field mbps "$b1")" \
		"$b1cpu" "$(field mbps "$b32")" "$b32cpu" \
		"$(($(errors "$w3") + $(errors "$w4") + $(errors "$b1") + $(errors "$b32")))" \
		>> "$tmp/rounds.$sys"
}

# median COLUMN FILE, and min-max: of one column over the rounds.
median() { cut -d' ' -f"$1" "$2" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
spread() { cut -d' ' -f"$1" "$2" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "-" hi }'; }
systems=(preforkd haproxy nginx socat socket-proxyd)
for ((r = 0; r < ROUNDS; r++)); do
	for ((k = 0; k < ${#systems[@]}; k++)); do
		run "${systems[(k + r) % ${#systems[@]}]}"
	done
done
for sys in "${systems[@]}"; do
	f=$tmp/rounds.$sys
	errs=$(cut -d' ' -f11 "$f" | awk '{ s += $1 } END { print s }')
	results+=("$(printf '| %s | %s (%s) | %s | %.1f | %s (%s) | %s | %.1f | %s | %.2f | %s | %.2f | %s |' "$sys" \
		"$(median 1 "$f")" "$(spread 1 "$f")" "$(median 2 "$f")" "$(median 3 "$f")" \
		"$(median 4 "$f")" "$(spread 4 "$f")" "$(median 5 "$f")" "$(median 6 "$f")" \
		"$(median 7 "$f")" "$(median 8 "$f")" "$(median 9 "$f")" "$(median 10 "$f")" "$errs")")
done

mkdir -p "$OUT"
md=$OUT/proxy-$(date +%F).md
{
	echo "Forwarding to refserver -w 2 on 127.0.0.1, $(nproc) CPUs, $ROUNDS rounds (medians; min-max of the rates), W3/W4 ${SECONDS_RUN} s with 32 clients, bulk $BYTES bytes each way; CPU is the system's own."
	echo
	echo "| system | W3 conn/s | W3 p99 µs | W3 CPU µs/conn | W4 req/s | W4 p99 µs | W4 CPU µs/req | bulk 1 MB/s | bulk 1 CPU s/GB | bulk 32 MB/s | bulk 32 CPU s/GB | errors |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
	printf '%s\n' "${results[@]}"
} | tee "$md"
