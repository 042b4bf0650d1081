#!/usr/bin/env bash
# Start, or resume, a long training run outside the clone, in the background, with a frozen copy of the
# code (later edits to the work tree cannot change a running or resumed run). Every session begins with it.
#   scripts/long_run.sh configs/fer2013_vgg_teacher.yaml          # run folder ~/emolens-runs/fer2013_vgg_teacher
#   tail -f ~/emolens-runs/fer2013_vgg_teacher.log                # progress; history.csv and curves.png in the folder
# The run checkpoints every epoch (last.pt) and resumes exactly where a killed session left it; on a machine
# without the run folder it starts from the committed snapshot snapshots/NAME.pt when there is one.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${1:?usage: scripts/long_run.sh CONFIG.yaml [PYTHON]}
PY=${2:-$PWD/.venv/bin/python}
RUNS=${EMOLENS_RUNS:-$HOME/emolens-runs}
NAME=$(basename "$CONFIG" .yaml)
OUT="$RUNS/$NAME"
mkdir -p "$RUNS"
if pgrep -f -- "--out $OUT( |$)" >/dev/null; then echo "already running: $OUT"; exit 0; fi
if [ ! -d "$RUNS/code-$NAME" ]; then cp -r src/emolens "$RUNS/code-$NAME.tmp" && mkdir -p "$RUNS/code-$NAME" \
  && mv "$RUNS/code-$NAME.tmp" "$RUNS/code-$NAME/emolens"; fi
SNAP="$PWD/snapshots/$NAME.pt"  # committed by `emolens snapshot` (docs/models/README.md): a changed machine
if [ -f "$OUT/last.pt" ]; then ARGS=(--resume --out "$OUT")
elif [ -f "$SNAP" ]; then ARGS=(--resume --out "$OUT" --from-snapshot "$SNAP"); echo "no $OUT/last.pt: from $SNAP"
else
  cp "$CONFIG" "$RUNS/$NAME.yaml"
  ARGS=(--config "$RUNS/$NAME.yaml" --out "$OUT"); fi  # data paths in the config are relative to the repo root
PYTHONPATH="$RUNS/code-$NAME" OMP_NUM_THREADS=2 nohup setsid nice -n 10 "$PY" -m emolens train "${ARGS[@]}" \
  --threads 2 --no-progress >> "$RUNS/$NAME.log" 2>&1 < /dev/null &
echo "started: $OUT (log $RUNS/$NAME.log, code $RUNS/code-$NAME)"
