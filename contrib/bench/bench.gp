# bench.gp - the chart of median rates run.sh writes (gnuplot -e "datafile=...; outfile=...").
set terminal pngcairo size 1000,520 noenhanced
set output outfile
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.8
set ylabel "operations per second (median of rounds, log scale)"
set logscale y
set yrange [10:*]
set xtics rotate by -30 left
set grid ytics
set key off
set title "preforkd and alternatives, loopback and unix sockets"
plot datafile using 2:xtic(1) linecolor rgb "#3b6ea5"
