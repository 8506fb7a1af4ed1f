#!/bin/bash
# SPDX-License-Identifier: ISC
# upgrade.sh - connections failed while the server's binary is upgraded, or it is restarted, under load.
#
#   contrib/bench/upgrade.sh [-n OPS] [-o OUTDIR]
#
#   BUILD=DIR   preforkd is DIR/src/preforkd and DIR/tests/preforkd-alt (the same
#               daemon tagged +alt, built by make check; without it the upgrades
#               alternate between two copies of src/preforkd)
#   KEEP=1      keep the temporary directory (the servers' logs) and say where
#
# Issue 17 §3. Each system serves echo on 127.0.0.1 with 2 workers, under
# loadgen -m conn -c 8 (connect, 16 bytes there and back, close; again) for the
# whole run, while OPS (10) operations are done one after the other, the first
# 1 s in, each once the one before has ended, then 1 s more:
#   preforkd upgrade   preforkctl upgrade, alternating two builds installed
#                      over the path it runs from (write beside, rename over);
#                      ended: preforkctl returned
#   preforkd restart   SIGTERM, wait for it to exit, start it again, wait for
#                      "ready:" (no service manager here, so no fd store: what
#                      systemctl restart costs without it; tests/systemd has
#                      the restart under systemd with the fd store)
#   nginx upgrade      Debian's nginx, stream module, proxying to the
#                      reference echo server (contrib/bench/refserver): USR2
#                      to the master (it execs the binary, a second master
#                      with new workers), then, once the new master has
#                      written its pid file, QUIT to the old one; ended: the
#                      old master is gone
# Reported per system: operations done, connections served, failed (loadgen's
# errors: refused, reset, timeout, eof, mismatch), p99 and maximum latency.
# Every server is started here and stopped by its pid. Installs nginx-light
# and libnginx-mod-stream from Debian when missing (as root).
set -euo pipefail

OPS=10
OUT=
while getopts n:o: opt; do
	case $opt in
	n) OPS=$OPTARG ;;
	o) OUT=$OPTARG ;;
	*) echo "usage: $0 [-n OPS] [-o OUTDIR]" >&2; exit 2 ;;
	esac
done
here=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-$(cd "$here/../.." && pwd)}
OUT=${OUT:-$here/results}
LOADGEN=$BUILD/contrib/bench/loadgen
REFSERVER=$BUILD/contrib/bench/refserver
PREFORKCTL=$BUILD/src/preforkctl
for f in "$BUILD/src/preforkd" "$PREFORKCTL" "$LOADGEN" "$REFSERVER"; do
	[ -x "$f" ] || { echo "upgrade.sh: $f is not built (make, make check)" >&2; exit 1; }
done
if ! [ -x /usr/sbin/nginx ] || ! [ -e /usr/lib/nginx/modules/ngx_stream_module.so ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y nginx-light libnginx-mod-stream >/dev/null
fi

tmp=$(mktemp -d /tmp/preforkd-upgrade-bench.XXXXXX)
chmod 755 "$tmp"
mkdir "$tmp/bin"
cp "$BUILD/src/preforkd" "$tmp/build-a"
if [ -x "$BUILD/tests/preforkd-alt" ]; then
	cp "$BUILD/tests/preforkd-alt" "$tmp/build-b"
else
	cp "$BUILD/src/preforkd" "$tmp/build-b"
fi
ppid= ref_pid=
# stop PID COMM: SIGTERM to a process we started, if it is still that one.
stop() {
	[ -n "$1" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] && kill -TERM "$1" 2>/dev/null || true
}
cleanup() {
	stop "$ppid" preforkd
	stop "$ref_pid" refserver
	[ -s "$tmp/nginx.pid" ] && stop "$(cat "$tmp/nginx.pid")" nginx
	if [ -n "${KEEP:-}" ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# install FILE: over $tmp/bin/preforkd as a package manager does.
install_bin() {
	cp "$1" "$tmp/bin/.preforkd.new"
	mv -f "$tmp/bin/.preforkd.new" "$tmp/bin/preforkd"
}

wait_log() {	# FILE TEXT SECONDS
	local i
	for ((i = 0; i < $3 * 20; i++)); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "upgrade.sh: no \"$2\" in $1 within $3 s" >&2
	tail -n 20 "$1" >&2
	return 1
}

start_preforkd() {	# PORT -> $ppid
	"$tmp/bin/preforkd" -c "$tmp/preforkd.conf" >>"$tmp/preforkd.log" 2>&1 &
	ppid=$!
	wait_log "$tmp/preforkd.log" "preforkd\[$ppid\]: notice: ready:" 10
}

# run NAME PORT OPERATION: loadgen for the whole run, OPS operations.
results=()
run() {
	local name=$1 port=$2 op=$3 lg=$tmp/loadgen-$1.out t0 lpid done=0
	"$LOADGEN" -m conn -c 8 -d 120 "127.0.0.1:$port" >"$lg" 2>&1 &
	lpid=$!
	sleep 1
	t0=$(date +%s.%N)
	for ((i = 0; i < OPS; i++)); do
		$op "$i" && done=$((done + 1))
	done
	sleep 1
	kill -INT "$lpid" 2>/dev/null || true
	wait "$lpid" || true
	local line secs
	line=$(tail -n 1 "$lg")
	secs=$(echo "$(date +%s.%N) - $t0" | bc)
	results+=("$name|$done|$secs|$line")
	echo "$name: $done of $OPS done in ${secs%.*} s: $line" >&2
}

preforkd_upgrade() {
	if (($1 % 2 == 0)); then install_bin "$tmp/build-b"; else install_bin "$tmp/build-a"; fi
	"$PREFORKCTL" -s "$tmp/control.sock" upgrade >>"$tmp/ops.log" 2>&1
}

preforkd_restart() {
	kill -TERM "$ppid"
	wait "$ppid" || true
	start_preforkd
}

nginx_upgrade() {
	local old new i
	old=$(cat "$tmp/nginx.pid")
	kill -USR2 "$old"
	for ((i = 0; i < 200; i++)); do	# the new master writes nginx.pid, the old one nginx.pid.oldbin
		new=$(cat "$tmp/nginx.pid" 2>/dev/null || true)
		[ -n "$new" ] && [ "$new" != "$old" ] && break
		sleep 0.05
	done
	[ -n "$new" ] && [ "$new" != "$old" ] || { echo "nginx: no new master" >&2; return 1; }
	kill -QUIT "$old"
	for ((i = 0; i < 400; i++)); do
		kill -0 "$old" 2>/dev/null || return 0
		sleep 0.05
	done
	echo "nginx: old master $old still there" >&2
	return 1
}

# preforkd: upgrades, then restarts, on one port each (a fresh accept queue).
port=$(free_port)
cat >"$tmp/preforkd.conf" <<EOF
control-socket = "$tmp/control.sock"
log-level = "notice"
service echo {
    listen = { "127.0.0.1:$port" }
    handler = "echo"
    workers = 2
}
EOF
install_bin "$tmp/build-a"
start_preforkd
run "preforkd upgrade" "$port" preforkd_upgrade
run "preforkd restart" "$port" preforkd_restart
kill -TERM "$ppid"; wait "$ppid" || true
ppid=

# nginx: stream proxy to the reference echo server.
ref_port=$(free_port)
"$REFSERVER" -w 2 "127.0.0.1:$ref_port" >"$tmp/refserver.log" 2>&1 &
ref_pid=$!
port=$(free_port)
cat >"$tmp/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
pid $tmp/nginx.pid;
error_log $tmp/nginx.log notice;
worker_processes 2;
events { worker_connections 4096; }
stream {
    server {
        listen 127.0.0.1:$port reuseport backlog=511;
        proxy_pass 127.0.0.1:$ref_port;
    }
}
EOF
sleep 0.3
/usr/sbin/nginx -c "$tmp/nginx.conf" -p "$tmp"
sleep 0.5
run "nginx upgrade (USR2+QUIT)" "$port" nginx_upgrade
stop "$(cat "$tmp/nginx.pid")" nginx
stop "$ref_pid" refserver

mkdir -p "$OUT"
md=$OUT/upgrade-$(date +%F).md
{
	echo "| system, $OPS operations under load (8 clients, connect-echo-close) | done | seconds | served | failed | refused | reset | timeout | p99 µs | max µs |"
	echo "|---|---|---|---|---|---|---|---|---|---|"
	for r in "${results[@]}"; do
		IFS='|' read -r name done secs line <<<"$r"
		get() { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
		printf '| %s | %s | %.1f | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$done" "$secs" \
			"$(get ops)" "$(get errors)" "$(get err_refused)" "$(get err_reset)" \
			"$(get err_timeout)" "$(get p99_us)" "$(get max_us)"
	done
} | tee "$md"
