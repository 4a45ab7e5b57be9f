#!/bin/bash
# Paired pc throughput, base (before the graph engine) vs new, alternating.
cd /work/main
for i in $(seq 1 10); do
  for b in base new; do
    B=/tmp/base/target/release/prospect; [ $b = new ] && B=/tmp/prospect-new
    $B bench -q --case mnist-mlp-pcx --rules pc --seconds 3 --threads 2 --json /tmp/pairs/$b-$i.json >/dev/null 2>&1
    python3 -c "import json;d=json.load(open('/tmp/pairs/$b-$i.json'));print($i,'$b',round(d['rows'][0]['samples_per_second']))"
  done
done
