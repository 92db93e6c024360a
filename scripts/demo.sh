#!/usr/bin/env bash
# Starts `airlock dev` and shows what it serves. Run through `make demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:$PATH"
ADDR=${AIRLOCK_ADDR:-127.0.0.1:50051}
log=$(mktemp)
airlock dev --addr "$ADDR" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
	grpcurl -plaintext "$ADDR" grpc.health.v1.Health/Check >/dev/null 2>&1 && break
	sleep 0.2
done
echo "== airlock dev is serving on $ADDR; its services:"
grpcurl -plaintext "$ADDR" list
echo "== health:"
grpcurl -plaintext "$ADDR" grpc.health.v1.Health/Check
