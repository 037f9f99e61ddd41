#!/usr/bin/env bash
# default-model.sh - the whole pipeline of the built-in home model, seeded:
# data -> tokenizer (checked against edgeagent's) -> training (one thread)
# -> GGUF -> sha256. Run by `make default-model` from the repository root.
# Usage: tools/train/default-model.sh BUILD_DIR WORK_DIR [train.py options...]
# Needs Debian's python3-torch, python3-numpy (and an optimised BLAS such as
# libopenblas0: the reference BLAS makes training ~6x slower).
set -euo pipefail
build=$1 work=$2
shift 2
py=${PYTHON:-/usr/bin/python3}
t=tools/train
start=$(date +%s)
mkdir -p "$work" models tests/data
"$py" $t/gen_data.py --seed 1 --out-dir "$work" --heldout-out tests/data/home_heldout.jsonl \
  --tools-out models/edgeagent-home.tools.json
"$py" $t/make_tokenizer.py "$work" models/edgeagent-home.tools.json "$work/merges.json" --call-format compact
"$py" $t/check_tokenizer.py "$build/edgeagent" "$work" models/edgeagent-home.tools.json "$work/merges.json"
# Three stages (tools/train/README.md, "How the committed model was
# trained"): the first two write calls without the newlines of the hermes
# framing (compact), the third in the framing edgeagent's grammar enforces.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
common=("$work" models/edgeagent-home.tools.json "$work/merges.json")
"$py" $t/train.py "${common[@]}" "$work/stage1" --call-format compact --seed 1 --steps 1800 --stop-at 600 "$@"
"$py" $t/train.py "${common[@]}" "$work/stage2" --call-format compact --seed 2 --init "$work/stage1/model.pt" \
  --steps 1650 --warmup 50 --lr 1.5e-3 --stop-at 200 "$@"
"$py" $t/train.py "${common[@]}" "$work/stage3" --call-format hermes --seed 3 --init "$work/stage2/model.pt" \
  --steps 1100 --warmup 30 --lr 1.5e-3 "$@"
"$py" $t/export_gguf.py "$work/stage3/model.pt" models/edgeagent-home.gguf
"$py" $t/plot.py models/edgeagent-home.losses.png "$work/stage1/losses.json" "$work/stage2/losses.json" \
  "$work/stage3/losses.json"
(cd models && sha256sum edgeagent-home.gguf > edgeagent-home.gguf.sha256)
echo "default-model: models/edgeagent-home.gguf ($(stat -c %s models/edgeagent-home.gguf) bytes) in $(( $(date +%s) - start )) s"
