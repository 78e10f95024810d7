# The chart of `make bench` (bench/http/bench.py writes the data files).
# Usage: gnuplot -c bench/http/chart.gp SMALL.dat BIG.dat OUT.png "HEADER" YMAX
#   YMAX: the top of the requests/s axis (room for the key above the bars).
#   SMALL.dat: scenario, then median/min/max requests/s for wordcount-server,
#              nginx (fixed body) and Node.js;
#   BIG.dat:   label, MB/s (median) and colour (1 ours, 2 nginx, 3 node,
#              4 Python) of each row of the 85.8 MB table.
small = ARG1
big = ARG2
set terminal pngcairo size 1600,720 font "DejaVu Sans,11" noenhanced
set output ARG3
set linetype 1 lc rgb "#1f6fb4" lw 1
set linetype 2 lc rgb "#3a9a3a" lw 1
set linetype 3 lc rgb "#e07b00" lw 1
set linetype 4 lc rgb "#8c8c8c" lw 1
set multiplot layout 1,2 title ARG4 font ",12"

# Left: small requests.
set title "Small requests: wrk, keep-alive, 64 connections\n(median requests/s; bars span min..max of the runs)"
set style data histograms
set style histogram errorbars gap 2 lw 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set ylabel "requests/s"
set yrange [0:real(ARG5)]
set format y "%.0s%c"
set grid ytics
set key top center horizontal maxrows 1 samplen 2
set xtics nomirror
set xrange [-0.6:3.6]
plot small using 2:3:4:xtic(1) title "wordcount-server" lt 1, \
     ''    using 5:6:7 title "nginx, fixed body (HTTP ceiling)" lt 2, \
     ''    using 8:9:10 title "Node.js http" lt 3

# Right: the 85.8 MB rows of the seed's table.
set title "85.8 MB bodies (the seed's corpus x 100): median MB/s, log scale\nblue: wordcount-server, green: nginx, orange: Node.js, grey: pure Python"
unset style
set style fill solid 0.85 border -1
set boxwidth 0.7
set logscale y
set yrange [10:*]
set ylabel "MB/s"
set format y "%g"
set xtics rotate by 40 right font ",9"
set key off
set lmargin 16
set xrange [*:*]
plot big using 0:2:3:xtic(1) with boxes lc variable notitle, \
     ''  using 0:2:(sprintf("%.0f", $2)) with labels offset 0,0.8 font ",8" notitle
unset multiplot
