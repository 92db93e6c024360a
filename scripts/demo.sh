#!/usr/bin/env bash
# The Airlock demo, run through `make demo` (which builds ./bin/airlock first):
# starts `airlock dev` (all six services, SQLite) in a scratch directory, runs
# a supplied-code job over examples/sales.xlsx and examples/customers.csv, then
# a job the default policy sends to review, approved from the CLI by a second
# person (an operator: a requester can never approve their own run), and shows
# the outputs. With XAI_API_KEY set it also asks the model for a job.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$ROOT/bin:$PATH"
[ -x bin/airlock ] || go build -o bin/airlock ./cmd/airlock

ADDR=${AIRLOCK_ADDR:-127.0.0.1:50051}
DEMO=$(mktemp -d "${TMPDIR:-/tmp}/airlock-demo.XXXXXX")
export AIRLOCK_ADDR=$ADDR AIRLOCK_DATA_DIR=$DEMO/.airlock
unset AIRLOCK_TOKEN

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "starting airlock dev on $ADDR (state in $DEMO/.airlock, log in $DEMO/dev.log)"
airlock dev --addr "$ADDR" --data-dir "$DEMO/.airlock" --policy-dir "$ROOT/policies" \
	--prices "$ROOT/examples/prices.yaml" >"$DEMO/dev.log" 2>&1 &
dev=$!
trap 'kill $dev 2>/dev/null; wait $dev 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
	[ -s "$DEMO/.airlock/admin.key" ] && airlock health --addr "$ADDR" >/dev/null 2>&1 && break
	kill -0 $dev 2>/dev/null || { cat "$DEMO/dev.log"; echo "airlock dev exited" >&2; exit 1; }
	sleep 0.2
done
if command -v grpcurl >/dev/null; then grpcurl -plaintext "$ADDR" list | sed 's/^/  /'; fi

step "creating API keys: alice (user) submits jobs, olga (operator) approves them"
alice=$(airlock keys create --tenant default --subject alice --role user 2>/dev/null)
olga=$(airlock keys create --tenant default --subject olga --role operator 2>/dev/null)
echo "  alice: ${alice:0:12}…   olga: ${olga:0:12}…"

step "job 1: supplied code — top 10 customers per region, revenue against target"
echo "  \$ airlock run --code examples/jobs/top_customers.py --input examples/sales.xlsx --input examples/customers.csv --out \$DEMO/out/top"
AIRLOCK_TOKEN=$alice airlock run --code examples/jobs/top_customers.py \
	--input examples/sales.xlsx --input examples/customers.csv --out "$DEMO/out/top"
echo
echo "  head of top_customers_by_region.csv:"
head -6 "$DEMO/out/top/top_customers_by_region.csv" | sed 's/^/    /'

step "job 2: a quarterly pack the default policy sends to REVIEW (shutil.make_archive)"
echo "  \$ airlock run --code examples/jobs/quarterly_pack.py --input examples/sales.xlsx --out \$DEMO/out/pack"
log=$DEMO/review-run.log
AIRLOCK_TOKEN=$alice airlock run --code examples/jobs/quarterly_pack.py \
	--input examples/sales.xlsx --out "$DEMO/out/pack" >"$log" 2>&1 &
runner=$!
approval=""
for _ in $(seq 1 300); do
	approval=$(grep -o 'approvals approve apr_[0-9a-z]*' "$log" | head -1 | awk '{print $3}') || true
	[ -n "$approval" ] && break
	kill -0 $runner 2>/dev/null || break
	sleep 0.2
done
seen=$(grep -c '' "$log" || true)
sed 's/^/  alice │ /' "$log"
[ -n "$approval" ] || { echo "the run did not wait for approval" >&2; exit 1; }
echo
echo "  olga reviews and approves it from her own terminal:"
echo "  \$ airlock approvals approve $approval"
AIRLOCK_TOKEN=$olga airlock approvals show "$approval" | sed 's/^/  olga  │ /' | head -12
AIRLOCK_TOKEN=$olga airlock approvals approve "$approval" | sed 's/^/  olga  │ /'
status=0
wait $runner || status=$?
echo
echo "  the run resumed by itself:"
tail -n +"$((seen + 1))" "$log" | sed 's/^/  alice │ /'
[ $status -eq 0 ] || { echo "the reviewed run did not succeed (exit $status)" >&2; exit 1; }
/usr/bin/python3 -c 'import sys, zipfile; names = zipfile.ZipFile(sys.argv[1]).namelist(); print("  quarterly_pack.zip holds", len(names), "files:", ", ".join(sorted(names)[:4]), "…")' \
	"$DEMO/out/pack/quarterly_pack.zip"

if [ -n "${XAI_API_KEY:-}" ]; then
	step "job 3: a prompt — the model writes the code (XAI_API_KEY is set)"
	AIRLOCK_TOKEN=$alice airlock run --input examples/sales.xlsx --input examples/customers.csv --out "$DEMO/out/prompt" \
		--prompt "For each region, the 5 products with the most revenue in 2025 and their share of the region's revenue; write top_products.csv" \
		|| echo "  (the prompt run did not succeed; see above)"
else
	step "job 3 skipped: set XAI_API_KEY to also run a prompt through the model"
fi

step "every run of the tenant, as the operator sees them"
AIRLOCK_TOKEN=$olga airlock runs list
echo
echo "outputs are under $DEMO/out"
