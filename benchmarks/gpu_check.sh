#!/usr/bin/env bash
# Every GPU check (CUDA tests, inference and training speed, equal-budget training, nccl) in one run
# (about 8 minutes on an H100/H200), from the repository root:
#
#   bash benchmarks/gpu_check.sh
#
# 1. install (pip install -e '.[test]'; with --no-deps when the dependencies already import, so it
#    works offline; a wheel folder .whl/ is used when present)
# 2. the CUDA tests (tests/test_cuda.py; a skip counts as a failure here)
# 3. the real-photo data (benchmarks/make_photo_data.py: skimage photos -> LMDBs + held-out set)
# 4. mrnet bench at a 1280x720 output, x2, fp32 and bf16: MRNet vs EDSR-baseline (+ Bicubic), 50 runs
#    each; RCAN and SwinIR (lightweight) with 5 runs; COMPILE=1 adds a torch.compile row set
# 5. training throughput of the real `mrnet train` loop, batch 16 x 48x48: MRNet fp32 / bf16+channels_last,
#    EDSR-baseline fp32 / bf16+channels_last (benchmarks/train_throughput.py)
# 6. equal budget: MRNet and EDSR-baseline trained BUDGET_S (default 150) seconds each on the same
#    photos, held-out PSNR side by side (benchmarks/equal_budget.py)
# 7. torchrun --nproc_per_node=1 mrnet_arch/train.py ... --launcher pytorch (nccl) smoke run
#
# Results: benchmarks/results/<card>_<date>/ (card name from nvidia-smi), also copied to $OUT when set.
# Exits 2 at once without CUDA; otherwise runs every step and exits 1 if any step failed (see steps.txt).
# Knobs: BUDGET_S (equal-budget seconds per model, default 150), SKIP_EQUAL=1, COMPILE=1.
set -uo pipefail
cd "$(dirname "$0")/.."

if ! command -v nvidia-smi >/dev/null 2>&1 || ! python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_check.sh: FATAL: no CUDA GPU (nvidia-smi missing or torch.cuda.is_available() is False)." >&2
    echo "gpu_check.sh: these checks only mean something on a GPU; nothing was run." >&2
    exit 2
fi

CARD=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1 | sed 's/[^A-Za-z0-9._-]\+/-/g; s/^-//; s/-$//')
DATE=$(date -u +%Y%m%d-%H%M)
RES="benchmarks/results/${CARD}_${DATE}"
export RES
mkdir -p "$RES"
BUDGET_S=${BUDGET_S:-150}
START=$SECONDS
FAILED=()
: > "$RES/steps.txt"

step() {  # step NAME TIMEOUT_S CMD...: run, time and record one check; keep going on failure
    local name=$1 limit=$2 t0=$SECONDS rc
    shift 2
    echo "=== [$((SECONDS - START)) s] $name: $*"
    if declare -F "$1" >/dev/null; then  # a shell function of this script (exported): run it in bash
        timeout --kill-after=10 "$limit" bash -c "$*"
    else
        timeout --kill-after=10 "$limit" "$@"
    fi
    rc=$?
    echo "$name: rc=$rc, $((SECONDS - t0)) s" | tee -a "$RES/steps.txt"
    if [ "$rc" -ne 0 ]; then FAILED+=("$name"); fi
    return 0
}

checks() {  # every step; its output goes through tee into $RES/gpu_check.log (see the end of this file)
echo "gpu_check.sh on $CARD, $(date -u '+%Y-%m-%d %H:%M UTC'), results in $RES"
nvidia-smi > "$RES/nvidia-smi.txt"
python -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), torch.cuda.get_device_name(0))' | tee "$RES/versions.txt"

# 1. install
install() {
    local pip_args=()
    if [ -d .whl ]; then pip_args+=(--no-index --find-links .whl); fi
    if python -c 'import basicsr, pytest, matplotlib, lmdb, cv2, skimage, yaml, addict, safetensors' 2>/dev/null; then
        pip install -q "${pip_args[@]}" --no-deps --no-build-isolation -e .
    else
        pip install -q "${pip_args[@]}" -e '.[test]' || return 1
        python -c 'import skimage' 2>/dev/null || pip install -q "${pip_args[@]}" scikit-image
    fi
}
export -f install
step install 180 install
python -c 'import mrnet_arch, torch, basicsr; print("mrnet_arch", mrnet_arch.__version__, "basicsr", basicsr.__version__)' \
    | tee -a "$RES/versions.txt"

# 2. CUDA tests (a skip would mean they did not run: fail)
cuda_tests() {
    python -m pytest tests/test_cuda.py -q -rs -p no:cacheprovider --junitxml "$RES/pytest_cuda.xml" \
        | tee "$RES/pytest_cuda.txt"
    local rc=${PIPESTATUS[0]}
    if grep -q 'skipped' "$RES/pytest_cuda.txt"; then echo 'CUDA tests were skipped'; return 1; fi
    return "$rc"
}
export -f cuda_tests
step cuda_tests 150 cuda_tests

# 3. data
step photo_data 120 python benchmarks/make_photo_data.py --output datasets/photos_bench --workers 8

# 4. inference benchmark, 1280x720 output, x2
step bench_720p 150 python -m mrnet_arch bench --models MRNet EDSR-baseline Bicubic --scale 2 --device cuda \
    --precision fp32 bf16 --repeat 50 --warmup 5 --output-dir "$RES" --name bench_x2_720p --plot
step bench_720p_others 150 python -m mrnet_arch bench --models RCAN SwinIR --scale 2 --device cuda \
    --precision fp32 bf16 --repeat 5 --warmup 2 --output-dir "$RES" --name bench_x2_720p_rcan_swinir
if [ "${COMPILE:-0}" = 1 ]; then
    step bench_720p_compiled 240 python -m mrnet_arch bench --models MRNet EDSR-baseline --scale 2 --device cuda \
        --precision bf16 --compile --repeat 50 --output-dir "$RES" --name bench_x2_720p_compiled
fi

# 5. training throughput of the real `mrnet train` loop: 4 configs x at most 45 s fit the step's 200 s, and
#    train_throughput.py rewrites its results after each config
step train_throughput 200 python benchmarks/train_throughput.py --iters 300 --skip 100 --timeout 45 \
    --configs MRNet:fp32 MRNet:bf16-cl EDSR-baseline:fp32 EDSR-baseline:bf16-cl --output-dir "$RES"

# 6. equal budget
if [ "${SKIP_EQUAL:-0}" != 1 ]; then
    step equal_budget $((2 * BUDGET_S + 120)) python benchmarks/equal_budget.py --data datasets/photos_bench \
        --models MRNet EDSR-baseline --budget-s "$BUDGET_S" --eval-every-s 30 --device cuda --workers 8 \
        --output-dir "$RES" --name equal_budget
fi

# 7. torchrun smoke run (nccl)
ddp_smoke() {
    local name="ddp_smoke_$(date +%H%M%S)"
    torchrun --nproc_per_node=1 --master_port=29517 mrnet_arch/train.py \
        -opt benchmarks/options/train_throughput_MRNet_x2.yml --launcher pytorch \
        --force_yml name="$name" train:total_iter=30 logger:print_freq=10 || return 1
    local log
    log=$(ls experiments/"$name"/train_"$name"_*.log 2>/dev/null | tail -n 1)
    cp "$log" "$RES/ddp_smoke.log" 2>/dev/null
    grep -q 'dist: True' "$log" && grep -q 'End of training' "$log"
}
export -f ddp_smoke
step torchrun_ddp 120 ddp_smoke

{
    echo "# GPU check, $CARD, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo '```'
    cat "$RES/versions.txt"
    cat "$RES/steps.txt"
    echo "total: $((SECONDS - START)) s; failed: ${FAILED[*]:-none}"
    echo '```'
    for f in bench_x2_720p bench_x2_720p_rcan_swinir bench_x2_720p_compiled train_throughput equal_budget; do
        if [ -f "$RES/$f.md" ]; then echo; sed 's/^# /## /' "$RES/$f.md"; fi
    done
} > "$RES/summary.md"
cat "$RES/summary.md"
if [ "${#FAILED[@]}" -ne 0 ]; then
    echo "gpu_check.sh: FAILED steps: ${FAILED[*]}" >&2
    return 1
fi
echo "gpu_check.sh: all steps passed in $((SECONDS - START)) s"
}

# The pipeline ends when tee has written the last line, so the log is complete before it is copied.
checks 2>&1 | tee "$RES/gpu_check.log"
rc=${PIPESTATUS[0]}
if [ -n "${OUT:-}" ]; then mkdir -p "$OUT/results" && cp -r "$RES" "$OUT/results/"; fi
exit "$rc"
