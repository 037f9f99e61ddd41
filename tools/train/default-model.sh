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
"$py" $t/gen_data.py --seed 1 --train 120000 --out-dir "$work" --heldout-out tests/data/home_heldout.jsonl \
  --tools-out models/edgeagent-home.tools.json
"$py" $t/make_tokenizer.py "$work" models/edgeagent-home.tools.json "$work/merges.json"
"$py" $t/check_tokenizer.py "$build/edgeagent" "$work" models/edgeagent-home.tools.json "$work/merges.json"
# One run in the hermes framing edgeagent's grammar enforces
# (tools/train/README.md, "How the model is trained"): 200 steps of a pure
# copy task (induction heads), then the home data with the loss weighted 4x
# on the argument values (the copied slots) and the copy task kept up in
# every step.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
"$py" $t/train.py "$work" models/edgeagent-home.tools.json "$work/merges.json" "$work/run" --seed 4 --tie \
  --copy-pretrain 200 --value-weight 4 --copy-aux 16 --lr 3e-3 --warmup 100 --steps 900 \
  --eval-every 300 --greedy-n 40 "$@"
"$py" $t/export_gguf.py "$work/run/model.pt" models/edgeagent-home.gguf
"$py" $t/plot.py models/edgeagent-home.losses.png "$work/run/losses.json"
(cd models && sha256sum edgeagent-home.gguf > edgeagent-home.gguf.sha256)
echo "default-model: models/edgeagent-home.gguf ($(stat -c %s models/edgeagent-home.gguf) bytes) in $(( $(date +%s) - start )) s"
