# SPDX-License-Identifier: ISC
# bench.gp - the chart of median rates run.sh writes (gnuplot -e "datafile=...; outfile=...").
# Data: "WORKLOAD SYSTEM" rate colour (1: preforkd, 2: the others, 3: preforkd-before) min max.
set terminal pngcairo size 1500,640 noenhanced
set output outfile
set style fill solid 0.8 border -1
set boxwidth 0.7
set linetype 1 linecolor rgb "#c0504d"
set linetype 2 linecolor rgb "#3b6ea5"
set linetype 3 linecolor rgb "#e8a33d"
set ylabel "operations/s (median; whisker: lowest to highest round)"
set logscale y
set yrange [10:1e6]
set xrange [-0.7:*]
set xtics rotate by -40 left nomirror font ",9"
set bmargin 12
set rmargin 14
set grid ytics
set key off
set title "preforkd (red; preforkd-before orange) and the alternatives, loopback and unix sockets"
plot datafile using 0:2:3:xtic(1) with boxes linecolor variable, \
     '' using 0:2:4:5 with yerrorbars linecolor rgb "#222222" pointtype 0, \
     '' using 0:2:(sprintf("%d", $2)) with labels offset 0,0.8 font ",8"
