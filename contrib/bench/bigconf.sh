#!/bin/sh
# SPDX-License-Identifier: ISC
# bigconf.sh - writes a large config to stdout, to time preforkd -t (config checking) on it.
#
#   contrib/bench/bigconf.sh addresses N   one echo service with N listen addresses
#   contrib/bench/bigconf.sh services N    N echo services with one address each
#   contrib/bench/bigconf.sh unix N        one service with N unix:/path addresses
#
# Addresses are distinct numeric IPv4 addresses with one-digit ports, written
# sixteen to a line, so that 78,000 of them fit in the 1 MiB a config may
# have. Time it with: /usr/bin/time -f '%U+%S s' src/preforkd -t -c FILE
set -eu

usage() {
	echo "usage: $0 addresses|services|unix N" >&2
	exit 2
}
[ $# -eq 2 ] || usage
case $2 in
''|*[!0-9]*) usage ;;
esac

awk -v mode="$1" -v n="$2" '
function addr(i,  j) {
	j = int(i / 9)
	return sprintf("\"1.%d.%d.%d:%d\"", int(j / 100), int(j / 10) % 10, j % 10, 1 + i % 9)
}
BEGIN {
	if (mode == "services") {
		for (i = 0; i < n; i++)
			printf "service s%d {\n  listen = { %s }\n  handler = \"echo\"\n}\n", i, addr(i)
		exit 0
	}
	if (mode != "addresses" && mode != "unix")
		exit 2
	printf "service big {\n  handler = \"echo\"\n  listen = {\n"
	for (i = 0; i < n; i++) {
		a = mode == "unix" ? sprintf("\"unix:/run/b/%d\"", i) : addr(i)
		printf "%s%s", a, i == n - 1 ? "\n" : (i % 16 == 15 ? ",\n" : ",")
	}
	printf "  }\n}\n"
}' || usage
