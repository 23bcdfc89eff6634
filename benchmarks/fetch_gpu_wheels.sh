#!/usr/bin/env bash
# Recreate .whl/ (ignored by git) from benchmarks/gpu_wheels.txt: the wheels the lent GPU machine lacks, for
# CPython 3.12 manylinux x86_64. Needs pip and network here; run from anywhere:
#
#   bash benchmarks/fetch_gpu_wheels.sh          # then carry ".whl" in the device call (see gpu_check.sh)
#
# Existing .whl/*.whl files are removed first (two versions of one package stop the install there).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LIST=benchmarks/gpu_wheels.txt
rm -rf .whl && mkdir -p .whl
# name==version of each listed wheel (file names are <name>-<version>-...)
specs() { grep -v '^#' "$LIST" | awk -F'\t' -v kind="$1" 'NF && $2 ~ "^"kind {split($1, p, "-"); print p[1] "==" p[2]}'; }
for spec in $(specs build); do
    "$PY" -m pip wheel -q --no-deps --no-binary "${spec%%==*}" "$spec" -w .whl
done
# shellcheck disable=SC2046
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl $(specs download)
# check: exactly the listed files, nothing else
expected=$(grep -v '^#' "$LIST" | awk -F'\t' 'NF {print $1}' | sort)
actual=$(cd .whl && ls -1 ./*.whl | sed 's|^\./||' | sort)
if [ "$expected" != "$actual" ]; then
    echo "fetch_gpu_wheels.sh: .whl/ differs from $LIST:" >&2
    diff <(echo "$expected") <(echo "$actual") >&2 || true
    exit 1
fi
du -ch .whl/*.whl | tail -n 1
