#!/usr/bin/env bash
# Every GPU check (CUDA tests, inference and training speed, equal-budget training, nccl) in one run, from the repository root.
#
# On a lent GPU machine (no network; no basicsr/lmdb/addict/yapf/future there: they travel as wheels in .whl/,
# rebuilt here with `bash benchmarks/fetch_gpu_wheels.sh`), ONE device call, speed part only (~4 min):
#
#   run(carry=[".whl"], timeout_s=330, command=
#     "python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site
#      .whl/*.whl && export PYTHONPATH=/tmp/site || exit; SKIP_EQUAL=1 DEADLINE_S=300 bash benchmarks/gpu_check.sh")
#
# (one line). The learning part (real photos, factor study, equal budget + weights) in calls of its own, on the
# Debian photos: first, here, `python -m mrnet_arch prepare photos --source debian --output datasets/photos_debian_hr
# --hr-only` (HR photos + provenance, 50 MiB: with the tree and .whl/ inside a call's 64 MiB), then
#
#   run(carry=[".whl", "datasets/photos_debian_hr"], timeout_s=420, command="<pip line as above> || exit;
#       PHOTOS=debian STEPS='install photo_data factors' DEADLINE_S=390 bash benchmarks/gpu_check.sh")
#   run(carry=[".whl", "datasets/photos_debian_hr"], timeout_s=570, command="<pip line as above> || exit;
#       PHOTOS=debian STEPS='install photo_data equal_budget' EQUAL_MODELS='MRNet EDSR-baseline' BUDGET_S=200
#       DEADLINE_S=540 bash benchmarks/gpu_check.sh")
#
#
# The CPU campaign's weights carried on (training from tools/campaign/state/, which travels with the tree, by its
# recipe; held-out scores beside those of the weights it started from) in a call of its own:
#
#   run(carry=[".whl", "datasets/photos_debian_hr"], timeout_s=570, command="<pip line as above> || exit;
#       PHOTOS=debian STEPS='install photo_data campaign' CAMPAIGN_S=400 DEADLINE_S=540 bash benchmarks/gpu_check.sh")
#
# A session's 15 minutes hold the speed call and one of the learning calls.
# (photo_data copies the carried HR photos to datasets/photos_debian and builds the LMDBs there, offline; 2.5 min
# on 2 CPU cores, so well under a minute with 8 workers.)
# What comes back: $OUT/gpu_check_<card>_<date>.tar.gz (the whole results folder but the weights),
# $OUT/weights_<card>_<date>.tar (the equal-budget weights and their provenance), $OUT/gpu_check.log and
# $OUT/summary.md (4 of the 8 files a call may return).
#
# CPU dry run of every step (no GPU needed; sizes and iterations shrunk to seconds; 3.2 minutes on an idle 2-core
# AMD EPYC, 9.6 on one shared with other work, 5 on a 2-core Intel Xeon):
#
#   DRY_RUN=1 bash benchmarks/gpu_check.sh
#
# Steps (each under `timeout`, and never past DEADLINE_S):
# 1. install: checks that mrnet_arch (imported first: it installs basicsr's torchvision alias), basicsr, lmdb,
#    addict, cv2, skimage, yaml, safetensors, pytest, matplotlib import; installs .whl/ into /tmp/mrnet_site
#    when they do not and .whl/ is there; then `pip install -e . --no-deps` (offline; failure only noted; skipped
#    in the dry run, which leaves an installation from another checkout alone)
# 2. the CUDA tests (tests/test_cuda.py; a skip counts as a failure, except in the dry run)
# 3. the real-photo data (mrnet prepare photos: skimage photos -> LMDBs + held-out set; PHOTOS=debian: the
#    Debian photos: datasets/photos_debian_hr copied to datasets/photos_debian, LMDBs built there offline)
# 4. torchrun (python -m torch.distributed.run) --nproc_per_node=1 mrnet_arch/train.py ... --launcher pytorch (nccl) smoke run
# 5. mrnet bench at a 1280x720 output, x2, fp32 and bf16: MRNet vs EDSR-baseline (+ Bicubic), 50 runs
#    each; RCAN and SwinIR (lightweight) with 5 runs; COMPILE=1 adds a torch.compile row set
# 6. training throughput of the real `mrnet train` loop, batch 16 x 48x48: MRNet fp32 / bf16+channels_last,
#    EDSR-baseline fp32 / bf16+channels_last (benchmarks/train_throughput.py); then the data path alone
#    (benchmarks/loader_throughput.py: sub-images/s of the old and new data paths with 4, 8, 12 loader workers)
# 7. factors: one factor at a time from the paper's setting (learning rate and warm-up, gradient clipping,
#    zero-initialised ConvBlock ends, twice the batch, bicubic or learned global skip; EDSR-baseline as the reference),
#    FACTOR_ITERS (default 2000) iterations each, all runs at once (benchmarks/factor_study.py)
# 8. equal budget: EQUAL_MODELS (default MRNet and EDSR-baseline) trained BUDGET_S (default 150) seconds each on
#    the same photos, held-out PSNR side by side, final weights saved with provenance (benchmarks/equal_budget.py)
# 9. campaign: the CPU campaign's carried weights (tools/campaign/state/weights_fp16.safetensors: MRNet-S x2 with a
#    bicubic global skip) trained on for CAMPAIGN_S seconds (default 300) by the campaign's recipe (Adam lr 5e-4,
#    20-iteration warm-up; on the call's photos: PHOTOS=debian gives the Debian photos, which the campaign trained
#    on with scikit-image's), bf16 + channels_last, with benchmarks/equal_budget.py: held-out PSNR at iteration 0
#    (the carried weights) and after; the weights saved with provenance as weights/MRNet-S-campaign.safetensors
#
# Results: benchmarks/results/<card>_<date>/ (card name from nvidia-smi; DRYRUN-cpu in the dry run), packed into
# $OUT as above when OUT is set. Exits 2 at once without CUDA (unless DRY_RUN=1); otherwise runs every step and
# exits 1 if any step failed or was cut (see steps.txt).
# Knobs: SKIP_EQUAL=1 (no factors, no equal budget, no campaign), CAMPAIGN_S, PHOTOS=skimage|debian, FACTOR_ITERS, EQUAL_MODELS, BUDGET_S (equal-budget seconds per model, default 150), COMPILE=1, DRY_RUN=1,
# DEADLINE_S (default 540, 2400 in the dry run: no step runs past this many seconds after the start, so the results are always
# packed before the device call's timeout_s), STEPS="install cuda_tests ..." (only these steps).
set -uo pipefail
cd "$(dirname "$0")/.."
# the checkout's mrnet_arch, whatever else is installed
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if ! command -v python >/dev/null 2>&1; then  # the GPU image documents python3; every step calls `python`
    mkdir -p /tmp/mrnet_bin && ln -sf "$(command -v python3)" /tmp/mrnet_bin/python && export PATH="/tmp/mrnet_bin:$PATH"
fi
DRY_RUN=${DRY_RUN:-0}

if [ "$DRY_RUN" = 1 ]; then
    CARD=DRYRUN-cpu
    echo "gpu_check.sh: DRY_RUN=1: every step on the CPU with shrunk sizes; the numbers mean nothing" >&2
elif ! command -v nvidia-smi >/dev/null 2>&1 || ! python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_check.sh: FATAL: no CUDA GPU (nvidia-smi missing or torch.cuda.is_available() is False)." >&2
    echo "gpu_check.sh: these checks only mean something on a GPU; nothing was run (DRY_RUN=1 for a CPU dry run)." >&2
    exit 2
else
    CARD=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1 | sed 's/[^A-Za-z0-9._-]\+/-/g; s/^-//; s/-$//')
fi
DATE=$(date -u +%Y%m%d-%H%M)
RES="benchmarks/results/${CARD}_${DATE}"
export RES
mkdir -p "$RES"
BUDGET_S=${BUDGET_S:-150}
FACTOR_ITERS=${FACTOR_ITERS:-2000}
EQUAL_MODELS=${EQUAL_MODELS:-MRNet EDSR-baseline}
CAMPAIGN_S=${CAMPAIGN_S:-300}
PHOTOS=${PHOTOS:-skimage}
case "$PHOTOS" in
    skimage) DATA_DIR=datasets/photos_bench; PHOTO_ARGS='' ;;
    debian) DATA_DIR=datasets/photos_debian; PHOTO_ARGS='--source debian'
        if [ ! -f datasets/photos_debian_hr/provenance.json ]; then
            echo "gpu_check.sh: PHOTOS=debian needs datasets/photos_debian_hr (mrnet prepare photos --source debian" \
                 "--output datasets/photos_debian_hr --hr-only), carried into the call" >&2
            exit 2
        fi ;;
    *) echo "gpu_check.sh: PHOTOS must be skimage or debian, got '$PHOTOS'" >&2; exit 2 ;;
esac
DEADLINE_S=${DEADLINE_S:-$([ "$DRY_RUN" = 1 ] && echo 2400 || echo 540)}
STEPS=${STEPS:-}
START=$SECONDS
FAILED=()
: > "$RES/steps.txt"

# Per-mode arguments: the real (GPU) settings, or seconds-long CPU equivalents for the dry run.
if [ "$DRY_RUN" = 1 ]; then
    DEV=cpu
    DATA_WORKERS=2
    BENCH_MAIN=(--device cpu --lr-size 24 32 --threads 2 --repeat 2 --warmup 1)
    BENCH_OTHERS=(--device cpu --lr-size 16 16 --threads 2 --repeat 1 --warmup 1)
    THROUGHPUT=(--cpu --iters 3 --skip 1 --print-freq 1 --batch 1 --workers 0 --timeout 150
                --force-yml datasets:train:gt_size=24)
    EQUAL=(--budget-iters 3 --eval-every-iters 3 --patch 12 --device cpu --workers 0 --batch 2 --threads 2)
    CAMPAIGN=(--budget-iters 2 --eval-every-iters 2 --patch 12 --device cpu --workers 0 --batch 2 --threads 2)
    FACTORS=(--model MRNet:num_feat=8,num_block=1,num_recursion=2 --reference EDSR:num_feat=8,num_block=1
             --batch 2 --iters 2 --eval-every-iters 1 --parallel 2 -- --device cpu --workers 0 --patch 12 --threads 1)
    LOADER=(--crop-size 192 --workers 0 --batches 3 --warmup 1 --repeats 1)
    DDP_OVERRIDES=(train:total_iter=2 logger:print_freq=1 datasets:train:prefetch_mode=~
                   datasets:train:pin_memory=false datasets:train:persistent_workers=false
                   datasets:train:num_worker_per_gpu=0 datasets:train:batch_size_per_gpu=1
                   datasets:train:gt_size=24)
    LIMIT_MULT=3  # step limits x3: a shared, loaded CPU
else
    DEV=cuda
    DATA_WORKERS=8
    BENCH_MAIN=(--device cuda --repeat 50 --warmup 5)
    BENCH_OTHERS=(--device cuda --repeat 5 --warmup 2)
    THROUGHPUT=(--iters 300 --skip 100 --timeout 45)
    EQUAL=(--budget-s "$BUDGET_S" --eval-every-s 30 --device cuda --workers 8)
    CAMPAIGN=(--budget-s "$CAMPAIGN_S" --eval-every-s 60 --device cuda --workers 8 --amp bf16 --channels-last)
    # 9 runs at once on 16 cores: one loader worker each
    FACTORS=(--iters "$FACTOR_ITERS" --eval-every-iters $((FACTOR_ITERS / 5)) --parallel 9 -- --device cuda --workers 1)
    LOADER=(--workers 4 8 12 --batches 40 --warmup 5 --repeats 1)
    DDP_OVERRIDES=(train:total_iter=30 logger:print_freq=10)
    LIMIT_MULT=1
fi
export DEV DRY_RUN

wanted() {  # wanted NAME: true when STEPS is empty or names NAME
    [ -z "$STEPS" ] || [[ " $STEPS " == *" $1 "* ]]
}

step() {  # step NAME TIMEOUT_S CMD...: run, time and record one check; keep going on failure
    local name=$1 limit=$(($2 * LIMIT_MULT)) t0=$SECONDS rc left
    shift 2
    wanted "$name" || return 0
    left=$((DEADLINE_S - (SECONDS - START) - 15))  # 15 s kept for the summary and packing
    if [ "$left" -lt 20 ]; then
        echo "=== [$((SECONDS - START)) s] $name: NOT RUN, only ${left} s left before DEADLINE_S=$DEADLINE_S"
        echo "$name: not run (deadline)" >> "$RES/steps.txt"
        FAILED+=("$name")
        return 0
    fi
    if [ "$left" -lt "$limit" ]; then limit=$left; fi
    echo "=== [$((SECONDS - START)) s] $name (limit ${limit} s): $*"
    if declare -F "$1" >/dev/null; then  # a shell function of this script (exported): run it in bash
        timeout --kill-after=10 "$limit" bash -c "$*"
    else
        timeout --kill-after=10 "$limit" "$@"
    fi
    rc=$?
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        echo "$name: rc=$rc (timed out after ${limit} s), $((SECONDS - t0)) s" | tee -a "$RES/steps.txt"
    else
        echo "$name: rc=$rc, $((SECONDS - t0)) s" | tee -a "$RES/steps.txt"
    fi
    if [ "$rc" -ne 0 ]; then FAILED+=("$name"); fi
    return 0
}

# 1. install: runs in this shell (not under `step`), so that PYTHONPATH set here reaches every later step.
PROBE='import mrnet_arch, basicsr, lmdb, addict, cv2, skimage, yaml, safetensors, pytest, matplotlib'
install() {
    local t0=$SECONDS rc=0
    wanted install || return 0
    echo "=== [$((SECONDS - START)) s] install"
    if ! python -c "$PROBE" 2>/dev/null && [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
        echo "install: dependencies missing; installing .whl/*.whl into /tmp/mrnet_site"
        timeout 120 python -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/mrnet_site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/mrnet_site"
    fi
    # mrnet_arch first: importing it installs the torchvision.transforms.functional_tensor alias basicsr needs
    if ! python -c "$PROBE; print('mrnet_arch', mrnet_arch.__version__, 'basicsr', basicsr.__version__, 'lmdb', lmdb.__version__)"; then
        echo "install: the import above failed (traceback above); modules missing on their own:"
        for m in torch torchvision lmdb addict yapf future cv2 skimage yaml safetensors pytest matplotlib; do
            python -c "import $m" >/dev/null 2>&1 || echo "  $m"
        done
        rc=1
    elif [ "$DRY_RUN" = 1 ]; then
        # on a development machine the package may be installed from another checkout: leave that installation alone
        echo "install: dry run: pip install -e . skipped (not needed: PYTHONPATH has the checkout)"
    else
        # optional: registers the `mrnet` command; nothing below needs it (PYTHONPATH has the checkout)
        if timeout 90 python -m pip install -q --no-index --no-deps --no-build-isolation -e . >"$RES/pip_install_e.txt" 2>&1; then
            echo "install: pip install -e . (no deps, offline) done"
        else
            echo "install: note: pip install -e . failed (not needed; see pip_install_e.txt)"
        fi
    fi
    echo "install: rc=$rc, $((SECONDS - t0)) s" | tee -a "$RES/steps.txt"
    if [ "$rc" -ne 0 ]; then FAILED+=(install); fi
}

# 2. CUDA tests (a skip would mean they did not run: fail, except in the dry run, where skipping is the point)
cuda_tests() {
    python -m pytest tests/test_cuda.py -q -rs -p no:cacheprovider --junitxml "$RES/pytest_cuda.xml" \
        | tee "$RES/pytest_cuda.txt"
    local rc=${PIPESTATUS[0]}
    if [ "$DRY_RUN" != 1 ] && grep -q 'skipped' "$RES/pytest_cuda.txt"; then echo 'CUDA tests were skipped'; return 1; fi
    return "$rc"
}
export -f cuda_tests

# 4. torchrun smoke run (nccl on CUDA, gloo on CPU)
ddp_smoke() {
    local name="ddp_smoke_$(date +%H%M%S)"
    python -m torch.distributed.run --nproc_per_node=1 --master_port=29517 mrnet_arch/train.py \
        -opt benchmarks/options/train_throughput_MRNet_x2.yml --launcher pytorch \
        --force_yml name="$name" $DDP_ARGS || return 1
    local log
    log=$(ls experiments/"$name"/train_"$name"_*.log 2>/dev/null | tail -n 1)
    cp "$log" "$RES/ddp_smoke.log" 2>/dev/null
    grep -q 'dist: True' "$log" && grep -q 'End of training' "$log"
}
export -f ddp_smoke
export DDP_ARGS="${DDP_OVERRIDES[*]}"

checks() {  # every step; its output goes through tee into $RES/gpu_check.log (see the end of this file)
echo "gpu_check.sh on $CARD, $(date -u '+%Y-%m-%d %H:%M UTC'), results in $RES, DEADLINE_S=$DEADLINE_S${STEPS:+, STEPS=$STEPS}"
if [ "$DRY_RUN" = 1 ]; then
    echo "dry run: no GPU" > "$RES/nvidia-smi.txt"
else
    nvidia-smi > "$RES/nvidia-smi.txt"
fi
python -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA")' | tee "$RES/versions.txt"

install
python -c 'import mrnet_arch, torch, basicsr; print("mrnet_arch", mrnet_arch.__version__, "basicsr", basicsr.__version__)' \
    | tee -a "$RES/versions.txt"

step cuda_tests 150 cuda_tests

# 3. data
photo_data() {  # the Debian photos: their HR folder copied (the carried one stays as it is), then built offline
    if [ "$PHOTOS" = debian ]; then
        mkdir -p "$DATA_DIR" && cp -a datasets/photos_debian_hr/. "$DATA_DIR"/ || return 1
    fi
    # shellcheck disable=SC2086  # PHOTO_ARGS: words (an exported function sees no arrays)
    python -m mrnet_arch prepare photos $PHOTO_ARGS --output "$DATA_DIR" --workers "$DATA_WORKERS"
}
export -f photo_data
export PHOTOS DATA_DIR DATA_WORKERS PHOTO_ARGS
step photo_data 120 photo_data

step torchrun_ddp 120 ddp_smoke

# 5. inference benchmark, 1280x720 output, x2 (dry run: 32x24 and 16x16 inputs)
step bench_720p 150 python -m mrnet_arch bench --models MRNet EDSR-baseline Bicubic --scale 2 \
    "${BENCH_MAIN[@]}" --precision fp32 bf16 --output-dir "$RES" --name bench_x2_720p --plot
step bench_720p_others 150 python -m mrnet_arch bench --models RCAN SwinIR --scale 2 \
    "${BENCH_OTHERS[@]}" --precision fp32 bf16 --output-dir "$RES" --name bench_x2_720p_rcan_swinir
if [ "${COMPILE:-0}" = 1 ] && [ "$DRY_RUN" != 1 ]; then
    step bench_720p_compiled 240 python -m mrnet_arch bench --models MRNet EDSR-baseline --scale 2 --device cuda \
        --precision bf16 --compile --repeat 50 --output-dir "$RES" --name bench_x2_720p_compiled
fi

# 6. training throughput of the real `mrnet train` loop: 4 configs x at most 45 s fit the step's 200 s, and
#    train_throughput.py rewrites its results after each config
step train_throughput 200 python benchmarks/train_throughput.py "${THROUGHPUT[@]}" \
    --configs MRNet:fp32 MRNet:bf16-cl EDSR-baseline:fp32 EDSR-baseline:bf16-cl --output-dir "$RES"

# 6b. the data path alone (480 px LMDB sub-images, as DIV2K's): sub-images/s per worker count
step loader 120 python benchmarks/loader_throughput.py "${LOADER[@]}" --output-dir "$RES" --name loader_throughput

# 7. factors, 8. equal budget (with the weights)
if [ "${SKIP_EQUAL:-0}" != 1 ]; then
    # the study stops its runs 30 s before the step's limit, so that it still writes its summary
    step factors 330 python benchmarks/factor_study.py --data "$DATA_DIR" --timeout $((330 * LIMIT_MULT - 30)) \
        --output-dir "$RES" --name factors "${FACTORS[@]}"
    read -r -a MODELS <<< "$EQUAL_MODELS"
    step equal_budget $((${#MODELS[@]} * (BUDGET_S + 40) + 40)) python benchmarks/equal_budget.py --data "$DATA_DIR" \
        --models "${MODELS[@]}" "${EQUAL[@]}" --save-weights "$RES/weights" --output-dir "$RES" --name equal_budget
    step campaign $((CAMPAIGN_S + 120)) python benchmarks/equal_budget.py --data "$DATA_DIR" \
        --models MRNet-S-campaign=tools/campaign/state/weights_fp16.safetensors "${CAMPAIGN[@]}" --lr 5e-4 \
        --warmup-iter 20 --save-weights "$RES/weights" --output-dir "$RES" --name campaign_gpu
fi

{
    echo "# GPU check, $CARD, $(date -u '+%Y-%m-%d %H:%M UTC')$([ "$DRY_RUN" = 1 ] && echo ' (CPU DRY RUN: numbers mean nothing)')"
    echo
    echo '```'
    cat "$RES/versions.txt"
    cat "$RES/steps.txt"
    echo "total: $((SECONDS - START)) s; failed: ${FAILED[*]:-none}"
    echo '```'
    for f in bench_x2_720p bench_x2_720p_rcan_swinir bench_x2_720p_compiled train_throughput loader_throughput \
             factors equal_budget campaign_gpu; do
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

# The pipeline ends when tee has written the last line, so the log is complete before it is packed. With OUT set,
# the log is also written straight into $OUT, so that it comes back even if the call is killed.
LOGS=("$RES/gpu_check.log")
if [ -n "${OUT:-}" ]; then mkdir -p "$OUT" && LOGS+=("$OUT/gpu_check.log"); fi
checks 2>&1 | tee "${LOGS[@]}"
rc=${PIPESTATUS[0]}
if [ -n "${OUT:-}" ]; then
    # at most 8 files come back: one archive of the whole results folder, the log, the summary
    tar -czf "$OUT/gpu_check_${CARD}_${DATE}.tar.gz" --exclude "$(basename "$RES")/weights" -C "$(dirname "$RES")" \
        "$(basename "$RES")" && cp "$RES/summary.md" "$OUT/summary.md" 2>/dev/null
    if [ -d "$RES/weights" ]; then  # safetensors do not compress; a file of their own (16 MiB each may come back)
        tar -cf "$OUT/weights_${CARD}_${DATE}.tar" -C "$RES" weights
    fi
    ls -l "$OUT"
fi
exit "$rc"
