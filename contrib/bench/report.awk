# SPDX-License-Identifier: ISC
# report.awk - the markdown table (or, with -v plot=1, the chart data) from run.sh's raw lines.
# Medians over rounds with their spread; ratios are taken within a round, then their median.
function sortlist(list, a,    n, i, j, t, m, b) {
	n = split(list, b, ",")
	m = 0
	for (i = 1; i <= n; i++)
		if (b[i] ~ /^[0-9.]+$/) a[++m] = b[i] + 0
	for (i = 2; i <= m; i++)
		for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	return m
}
function median(list,    n, a) {
	n = sortlist(list, a)
	if (n == 0) return ""
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function lowest(list,    n, a) { n = sortlist(list, a); return n ? a[1] : "" }
function highest(list,    n, a) { n = sortlist(list, a); return n ? a[n] : "" }
function total(list,    n, a, i, s) { n = split(list, a, ","); for (i = 1; i <= n; i++) s += a[i]; return s }
# (mawk creates vals[key] on the left of "=" before testing "in": no ternary here.)
function add(key, v) { if (key in vals) vals[key] = vals[key] "," v; else vals[key] = v }
function fmt(f, v) { return v == "" ? "-" : sprintf(f, v) }
function isnum(v) { return v ~ /^[0-9]+(\.[0-9]*)?$/ }
function rank(list, word,    n, a, i) {
	n = split(list, a, " ")
	for (i = 1; i <= n; i++) if (a[i] == word) return i
	return n + 1
}
BEGIN {
	WORKLOADS = "W3-tcp W3-unix W4-tcp W4-unix W3-tcp-1wpin W3-unix-1wpin W4-tcp-1wpin W4-unix-1wpin W4-tcp-c512 W3-exec"
	SYSTEMS = "preforkd preforkd-before reference spawn-only tcpserver xinetd socat"
}
{
	delete f
	for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
	r = f["round"]; s = f["system"]; w = f["workload"]
	if (f["pass"] == "count") {
		ir[s, w] = f["ir_op"]; sc[s, w] = f["syscalls_op"]; insn_tool = f["insn_tool"]; count = f["count"]
	} else if ("rate" in f) {
		rate[r, s, w] = f["rate"]
		cpu[r, s, w] = f["srv_cpu_us_op"]
		add("rate" SUBSEP s SUBSEP w, f["rate"])
		add("p50" SUBSEP s SUBSEP w, f["p50_us"])
		add("p99" SUBSEP s SUBSEP w, f["p99_us"])
		add("err" SUBSEP s SUBSEP w, f["errors"])
		add("cpu" SUBSEP s SUBSEP w, f["srv_cpu_us_op"])
		add("lgcpu" SUBSEP s SUBSEP w, f["lg_cpu_us_op"])
		if (w == "W3-tcp") add("tw" SUBSEP s, f["tw_end"])
		if (!((s, w) in seen)) { seen[s, w] = 1; keys[++nkeys] = s SUBSEP w }
		rounds[r] = 1
	} else if (w == "fairness") {
		n = split(f["served"], c, ",")
		if (n > 0 && c[1] > 0) add("fair" SUBSEP s, c[n] / c[1]); else add("fair" SUBSEP s, "inf")
		if (("fairdetail" SUBSEP s) in vals) vals["fairdetail" SUBSEP s] = vals["fairdetail" SUBSEP s] " / " f["served"]
		else vals["fairdetail" SUBSEP s] = f["served"]
		fairsys[s] = 1
	} else if (w == "reload") {
		n = split(f["ms"], m, ","); for (i = 1; i <= n; i++) add("reload" SUBSEP s, m[i])
	} else if (w == "rss") {
		add("rssm" SUBSEP s, f["master_kib"])
		n = split(f["workers_kib"], m, ","); for (i = 1; i <= n; i++) add("rssw" SUBSEP s, m[i])
	}
}
END {
	# Rows in a fixed order: workload, then system.
	for (i = 1; i <= nkeys; i++) {
		split(keys[i], sw, SUBSEP)
		order[i] = keys[i]; weight[i] = rank(WORKLOADS, sw[2]) * 100 + rank(SYSTEMS, sw[1])
	}
	for (i = 2; i <= nkeys; i++)
		for (j = i; j > 1 && weight[j - 1] > weight[j]; j--) {
			t = weight[j]; weight[j] = weight[j - 1]; weight[j - 1] = t
			t = order[j]; order[j] = order[j - 1]; order[j - 1] = t
		}
	# Ratios within a round, read the way the targets are set: an echo rate
	# over the reference's, and preforkd's exec rate over each other system's.
	# And preforkd over preforkd-before, rate and CPU per operation.
	for (r in rounds)
		for (k = 1; k <= nkeys; k++) {
			split(order[k], sw, SUBSEP); s = sw[1]; w = sw[2]
			if (w ~ /exec/) { num = "preforkd"; den = s } else { num = s; den = "reference" }
			if ((r, num, w) in rate && (r, den, w) in rate && rate[r, den, w] > 0)
				add("ratio" SUBSEP s SUBSEP w, rate[r, num, w] / rate[r, den, w])
			if (s == "preforkd" && (r, "preforkd-before", w) in rate && rate[r, "preforkd-before", w] > 0) {
				add("vsrate" SUBSEP w, rate[r, s, w] / rate[r, "preforkd-before", w])
				if (cpu[r, "preforkd-before", w] > 0)
					add("vscpu" SUBSEP w, cpu[r, s, w] / cpu[r, "preforkd-before", w])
			}
		}
	if (plot) {
		for (k = 1; k <= nkeys; k++) {
			split(order[k], sw, SUBSEP); key = "rate" SUBSEP order[k]
			printf "\"%s %s\" %d %d %d %d\n", sw[2], sw[1], median(vals[key]),
			       sw[1] == "preforkd" ? 1 : sw[1] == "preforkd-before" ? 3 : 2,
			       lowest(vals[key]), highest(vals[key])
		}
		exit
	}
	print "| workload | system | rate (/s) | min-max | p50 (µs) | p99 (µs) | errors | server CPU (µs/op) | loadgen CPU (µs/op) | instructions/op | syscalls/op | ratio |"
	print "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for (k = 1; k <= nkeys; k++) {
		split(order[k], sw, SUBSEP); s = sw[1]; w = sw[2]
		key = SUBSEP order[k]
		rt = ("ratio" key) in vals ? sprintf("%.2f", median(vals["ratio" key])) : "-"
		insn = "-"
		if ((s, w) in ir && isnum(ir[s, w])) {
			insn = sprintf("%.0f", ir[s, w])
			if (s != "reference" && ("reference", w) in ir && isnum(ir["reference", w]) && ir["reference", w] > 0)
				insn = insn sprintf(" (%.2f×)", ir[s, w] / ir["reference", w])
		}
		sys = (s, w) in sc && isnum(sc[s, w]) ? sprintf("%.2f", sc[s, w]) : "-"
		printf "| %s | %s | %d | %d-%d | %s | %s | %d | %s | %s | %s | %s | %s |\n", w, s,
		       median(vals["rate" key]), lowest(vals["rate" key]), highest(vals["rate" key]),
		       fmt("%d", median(vals["p50" key])), fmt("%d", median(vals["p99" key])),
		       total(vals["err" key]), fmt("%.1f", median(vals["cpu" key])),
		       fmt("%.1f", median(vals["lgcpu" key])), insn, sys, rt
	}
	print ""
	print "Rates and CPU times are medians over rounds (min-max: the lowest and highest round); errors are"
	print "summed. Ratios, medians of ratios taken within a round: an echo workload is the system's rate over"
	print "the reference server's; W3-exec is preforkd's rate over the system's (spawn-only: the same helper"
	print "run with no server and no network, the most any exec-style server can do here)."
	print "Server CPU: user+system time of the server's processes (master, workers, helpers) over the run,"
	print "per operation; on loopback a socket's receive work is done by whichever side sends, so the"
	print "server and loadgen columns each hold part of the other's kernel work."
	printf "Instructions and syscalls per operation: 1 worker, 1 client, the slope between %s and %s\n", count, 2 * count
	printf "operations (start-up and stop left out), the whole server (%s; user space only).\n",
	       insn_tool == "perf" ? "perf stat -e instructions:u" : "callgrind Ir"
	nf = split("preforkd preforkd-before", fs, " ")
	for (i = 1; i <= nf; i++) {
		s = fs[i]
		if (!(s in fairsys)) continue
		printf "%s: fairness (4 workers, W3): busiest/least busy worker, median %.2f (per round, connections per worker: %s)\n",
		       s, median(vals["fair" SUBSEP s]), vals["fairdetail" SUBSEP s]
		printf "%s: reload, SIGHUP to new generation serving: median %d ms (%s)\n", s,
		       median(vals["reload" SUBSEP s]), vals["reload" SUBSEP s]
		printf "%s: idle RSS: master %d KiB (median), workers %s KiB\n", s, median(vals["rssm" SUBSEP s]),
		       vals["rssw" SUBSEP s]
	}
	for (k = 1; k <= nkeys; k++) {
		split(order[k], sw, SUBSEP)
		if (sw[2] == "W3-tcp" && ("tw" SUBSEP sw[1]) in vals)
			printf "%s: TIME_WAIT sockets at the end of a W3-tcp run: median %d\n", sw[1],
			       median(vals["tw" SUBSEP sw[1]])
	}
	if (("preforkd-before", "W3-tcp") in seen) {
		print ""
		print "| workload | preforkd / preforkd-before: rate | server CPU/op | instructions/op | syscalls/op |"
		print "|---|---:|---:|---:|---:|"
		for (k = 1; k <= nkeys; k++) {
			split(order[k], sw, SUBSEP); w = sw[2]
			if (sw[1] != "preforkd" || !(("preforkd-before", w) in seen)) continue
			ri = rs = "-"
			if (isnum(ir["preforkd", w]) && isnum(ir["preforkd-before", w]) && ir["preforkd-before", w] > 0)
				ri = sprintf("%.2f", ir["preforkd", w] / ir["preforkd-before", w])
			if (isnum(sc["preforkd", w]) && isnum(sc["preforkd-before", w]) && sc["preforkd-before", w] > 0)
				rs = sprintf("%.2f", sc["preforkd", w] / sc["preforkd-before", w])
			printf "| %s | %s | %s | %s | %s |\n", w, fmt("%.2f", median(vals["vsrate" SUBSEP w])),
			       fmt("%.2f", median(vals["vscpu" SUBSEP w])), ri, rs
		}
		print ""
		print "Medians of ratios taken within a round; instructions and syscalls from the counting pass."
	}
}
