# SPDX-License-Identifier: ISC
# report.awk - the markdown table (or, with -v plot=1, the chart data) from run.sh's raw lines.
# Medians over rounds; ratios are taken within a round, then their median.
function median(list,    n, a, i, j, t) {
	n = split(list, a, ",")
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	if (n == 0) return 0
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
# (mawk creates vals[key] on the left of "=" before testing "in": no ternary here.)
function add(key, v) { if (key in vals) vals[key] = vals[key] "," v; else vals[key] = v }
{
	delete f
	for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
	r = f["round"]; s = f["system"]; w = f["workload"]
	if ("rate" in f) {
		rate[r, s, w] = f["rate"]
		add("rate" SUBSEP s SUBSEP w, f["rate"])
		add("p99" SUBSEP s SUBSEP w, f["p99_us"])
		add("err" SUBSEP s SUBSEP w, f["errors"])
		if (!((s, w) in seen)) { seen[s, w] = 1; order[++norder] = s SUBSEP w }
		rounds[r] = 1
	} else if (w == "fairness") {
		n = split(f["served"], c, ",")
		if (n > 0 && c[1] > 0) add("fair", c[n] / c[1]); else add("fair", "inf")
		add("fairdetail", f["served"])
	} else if (w == "reload") {
		n = split(f["ms"], m, ","); for (i = 1; i <= n; i++) add("reload", m[i])
	} else if (w == "rss") {
		add("rssm", f["master_kib"])
		n = split(f["workers_kib"], m, ","); for (i = 1; i <= n; i++) add("rssw", m[i])
	}
}
END {
	# Ratios within a round, read the way the targets are set: an echo rate
	# over the reference's, and preforkd's exec rate over each other system's.
	for (r in rounds)
		for (k = 1; k <= norder; k++) {
			split(order[k], sw, SUBSEP); s = sw[1]; w = sw[2]
			if (w ~ /exec/) { num = "preforkd"; den = s } else { num = s; den = "reference" }
			if ((r, num, w) in rate && (r, den, w) in rate && rate[r, den, w] > 0)
				add("ratio" SUBSEP s SUBSEP w, rate[r, num, w] / rate[r, den, w])
		}
	if (plot) {
		for (k = 1; k <= norder; k++) {
			split(order[k], sw, SUBSEP)
			printf "\"%s %s\" %d %d\n", sw[2], sw[1], median(vals["rate" SUBSEP order[k]]),
			       sw[1] == "preforkd" ? 1 : 2
		}
		exit
	}
	print "| workload | system | rate (/s, median) | p99 latency (µs) | errors | ratio |"
	print "|---|---|---:|---:|---:|---:|"
	for (k = 1; k <= norder; k++) {
		split(order[k], sw, SUBSEP); s = sw[1]; w = sw[2]
		rt = ("ratio" SUBSEP order[k]) in vals ? sprintf("%.2f", median(vals["ratio" SUBSEP order[k]])) : "-"
		p99 = vals["p99" SUBSEP order[k]] ~ /[0-9]/ ? median(vals["p99" SUBSEP order[k]]) : "-"
		printf "| %s | %s | %d | %s | %s | %s |\n", w, s, median(vals["rate" SUBSEP order[k]]),
		       p99, vals["err" SUBSEP order[k]], rt
	}
	print ""
	print "Ratios, medians of ratios taken within a round: an echo workload is the system's rate over the"
	print "reference server's; W3-exec is preforkd's rate over the system's (spawn-only: the same helper"
	print "run with no server and no network, the most any exec-style server can do here)."
	printf "Fairness (4 workers, W3): busiest/least busy worker, median %.2f (per round: %s)\n",
	       median(vals["fair"]), vals["fairdetail"]
	printf "Reload, SIGHUP to new generation serving: median %d ms (%s)\n", median(vals["reload"]), vals["reload"]
	printf "Idle RSS: master %d KiB (median), workers %s KiB\n", median(vals["rssm"]), vals["rssw"]
}
