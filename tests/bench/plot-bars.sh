#!/bin/sh
# Bar chart of a benchmark summary with gnuplot, as OUT.png and OUT.svg.
# Usage: plot-bars.sh DATA OUT TITLE YLABEL
# DATA: one bar per line, '"label" value [min max]' (labels may hold \n); with min and max
# each bar gets a min..max error bar.
set -eu
data=$1
out=$2
title=$3
ylabel=$4
bars='using 0:2:xtic(1) with boxes notitle'
if awk 'NF < 4 { exit 1 }' "$data"; then
	bars='using 0:2:xtic(1) with boxes title "median", "" using 0:2:3:4 with yerrorbars title "min .. max" lc rgb "black"'
fi
for term in "pngcairo size 1400,600" "svg size 1400,600"; do
	ext=${term%% *}
	ext=${ext%cairo}
	gnuplot <<GP
set terminal $term
set termoption noenhanced
set output "$out.$ext"
set title "$title"
set ylabel "$ylabel"
set style fill solid 0.5
set boxwidth 0.6
set grid ytics
set xtics font ",7" rotate by -30
set bmargin 8
set yrange [0:*]
plot "$data" $bars
GP
done
