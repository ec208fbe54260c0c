#!/bin/bash
export PATH=/tmp/ci/.venv/bin:$PATH
cd /tmp/q
( while true; do ps -eo rss,comm | awk '/python|electrofem/ {s+=$1} END {print strftime("%s"), s/1024/1024}' >> rssall.log; sleep 5; done ) &
RP=$!
T0=$(date +%s); echo "start $T0" > run16.log
/usr/bin/time -v electrofem generate /work/main/benchmarks/results/issue16_discharge_h13/issue16_discharge.toml -o gen16 > gen16.log 2>&1
echo "gen done $(( $(date +%s) - T0 ))" >> run16.log
T1=$(date +%s); echo "discharge start $T1" >> run16.log
mpirun -n 2 electrofem discharge gen16/mesh.xdmf -o out16 --c-rates 1 2>&1 | while IFS= read -r l; do echo "$(( $(date +%s) - T1 )) $l"; done >> run16.log
echo "done $(( $(date +%s) - T1 ))" >> run16.log
kill $RP
