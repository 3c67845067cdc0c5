# bench_chart.gp - docs/bench.svg from the data files scripts/bench_report.py writes.
#
#   gnuplot -e "stream='build/bench-stream.dat'; rtt='build/bench-rtt.dat'; \
#               out='docs/bench.svg'; ttl='ringpipe bench'" scripts/bench_chart.gp
#
# Left: stream throughput by write size (GB/s, log scale), one bar per mechanism.
# Middle: 64-byte round trip (us, log scale): p50, p99 and after a sleep.
# Right (when cap names a data file): 64 KiB writes by pipe capacity.

if (!exists("stream")) stream = 'build/bench-stream.dat'
if (!exists("rtt")) rtt = 'build/bench-rtt.dat'
if (!exists("cap")) cap = ''
if (!exists("out")) out = 'docs/bench.svg'
if (!exists("ttl")) ttl = 'ringpipe bench'

set terminal svg size (cap eq '' ? 1200 : 1700),560 dynamic enhanced font 'sans,11' background rgb 'white'
set output out
set datafile missing 'NaN'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set key outside below center horizontal maxrows 2 font ',9' noenhanced
set grid ytics mytics lc rgb '#dddddd'
set logscale y
set format y '%g'

set multiplot layout 1,(cap eq '' ? 2 : 3) title ttl noenhanced

set title 'stream: throughput by write size (higher is better)'
set ylabel 'GB/s'
set xlabel ''
set key autotitle columnhead
plot for [i=2:8] stream using i:xtic(1) lc i-1

set title '64-byte round trip (lower is better)'
set ylabel 'microseconds'
set xlabel ''
plot for [i=2:6] rtt using i:xtic(1) lc i-1

if (cap ne '') {
	set title 'throughput by capacity, 64 KiB writes (higher is better)'
	set ylabel 'GB/s'
	set xlabel 'pipe capacity'
	plot for [i=2:3] cap using i:xtic(1) lc (i == 2 ? 4 : 1)
}

unset multiplot
