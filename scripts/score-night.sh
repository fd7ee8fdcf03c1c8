#!/usr/bin/env bash
# One scored night as issue 15 measured it: 100 trucks, 15 injections per code,
# seed 7, published as fast as the broker takes it, then `muckwatch score`.
#   scripts/score-night.sh SIGMA_M INTERVAL_S [honest]
# Needs `cargo build --release --workspace` first (BIN= picks other binaries).
# Leaves its files in target/score-nights/ and prints the score table.
set -euo pipefail
cd "$(dirname "$0")/.."
sigma=$1 interval=$2 scenario=${3:-mixed}
bin=${BIN:-target/release}
dir=target/score-nights/$scenario-s$sigma-i$interval
rm -rf "$dir" && mkdir -p "$dir"
mqtt=$((20000 + RANDOM % 20000)) http=$((mqtt + 1))
"$bin/muckwatch" serve --database-url "sqlite://$dir/db.sqlite" \
    --mqtt-listen "127.0.0.1:$mqtt" --http "127.0.0.1:$http" >"$dir/serve.log" 2>&1 &
serve=$!
trap 'kill $serve 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$http/healthz" >/dev/null && break; sleep 0.2; done
token=$("$bin/muckwatch" token create --role admin --database-url "sqlite://$dir/db.sqlite" | awk '{print $NF}')
if [ "$scenario" = honest ]; then
    what=(--scenario honest)
else
    codes=NO_PERMIT,OUT_OF_HOURS,ROUTE_DEVIATION,RESTRICTED_ZONE,SPEEDING,ILLEGAL_DUMPING,WRONG_DISPOSAL_SITE,COVER_OPEN,OVERLOAD,TRACK_GAP
    what=(--inject "$(echo "$codes" | sed 's/,/=15,/g')=15")
fi
"$bin/muckwatch-sim" --broker "mqtt://127.0.0.1:$mqtt" --api "http://127.0.0.1:$http" \
    --token "$token" --trucks 100 "${what[@]}" --seed 7 --rate max \
    --sigma "$sigma" --interval "$interval" --quiet --truth "$dir/truth.ndjson" >"$dir/sim.out"
sent=$(grep -o 'sent [0-9]*' "$dir/sim.out" | awk '{print $2}')
# The broker's acknowledgements say only that it has the fixes: wait until stored.
for _ in $(seq 1 1200); do
    n=$(curl -s "http://127.0.0.1:$http/metrics" | awk '/^muckwatch_fixes_ingested_total/ {print $2}')
    [ "${n%.*}" = "$sent" ] && break
    sleep 0.5
done
kill -TERM $serve && wait $serve || true
echo "sigma $sigma m, a fix every $interval s, $scenario: $sent fixes sent, ${n%.*} stored"
"$bin/muckwatch" score --truth "$dir/truth.ndjson" --database-url "sqlite://$dir/db.sqlite"
