#!/bin/sh
# The results table of the default model (RESULTS.md), computed by the C runtime: through
# imagebind-preprocess + imagebind-embed, and through the elements (encoders + imagebindmatch).
#
#   models/train/evaluate.sh BUILD DATA TRAIN_OUT [MODEL]
#
# BUILD: a meson build directory; DATA: generate.py's output (the held-out split is used);
# TRAIN_OUT: train.py's output (merges.txt, supervised-audio.pth); MODEL: the model file to
# evaluate (default models/imagebind-default.gguf). The supervised upper bound is converted
# from TRAIN_OUT/supervised-audio.pth with convert.py, as the shipped model was.
set -e
BUILD=${1:?build directory}
DATA=${2:?data directory}
OUT=${3:?train.py output directory}
MODEL=${4:-$(dirname "$0")/../imagebind-default.gguf}
HERE=$(dirname "$0")

python3 "$HERE/../convert.py" "$OUT/supervised-audio.pth" "$OUT/supervised-audio.gguf" \
  --config "$HERE/config.json" --bpe "$OUT/merges.txt" --modalities vision,text,audio \
  --name imagebind-default-supervised-audio >/dev/null
/usr/bin/python3 "$HERE/evaluate.py" --build "$BUILD" --data "$DATA" --model "$MODEL" \
  --supervised "$OUT/supervised-audio.gguf" --json "$OUT/results.json" --markdown --elements
