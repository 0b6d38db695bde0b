#!/usr/bin/python3
"""Checks that the C runtime reproduces the PyTorch model: same inputs, both embeddings.

  /usr/bin/python3 models/train/verify.py --build build --data DATA --pth OUT/default.pth \\
      --model models/imagebind-default.gguf

For a few held-out samples of every modality and the zero-shot prompts, prints the largest
relative error max|c - p| / max|p| between tools/imagebind-embed and model.py, and checks that
the Python tokenizer (bpe.py) and the C one (from the model file) give the same ids for every
caption of the grammar. Exit status 1 if an error exceeds --tolerance.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
import model as ib  # noqa: E402
import world  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def c_embed(build, model, m, x, tmp):
    src, dst = os.path.join(tmp, 'in.npy'), os.path.join(tmp, 'out.npy')
    np.save(src, x)
    subprocess.run([os.path.join(build, 'tools', 'imagebind-embed'), '--model', model,
                    '--modality', m, '--threads', '1', '--output', dst, src], check=True)
    return np.load(dst)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--build', default='build')
    ap.add_argument('--data', required=True)
    ap.add_argument('--pth', required=True)
    ap.add_argument('--model', required=True)
    ap.add_argument('--merges', required=True)
    ap.add_argument('--config', default=os.path.join(HERE, 'config.json'))
    ap.add_argument('--n', type=int, default=4)
    ap.add_argument('--tolerance', type=float, default=1e-4)
    args = ap.parse_args()

    torch.set_num_threads(1)
    with open(args.config) as f:
        cfg = json.load(f)['constructor_args']
    net = ib.ImageBindModel(cfg)
    net.load_state_dict(torch.load(args.pth))
    net.eval()
    tok = bpe.Tokenizer(bpe.load(args.merges))
    held = os.path.join(args.data, world.HELD_OUT)
    labels = np.load(os.path.join(held, 'labels.npy'))
    pick = [int(np.flatnonzero(labels == c)[0]) for c in range(len(world.SCENES))][:args.n]
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        captions = sorted(set(world.all_captions()))
        ids_path = os.path.join(tmp, 'ids.npy')
        subprocess.run([os.path.join(args.build, 'tools', 'imagebind-preprocess'), '--modality',
                        'text', '--model', args.model, '--output', ids_path] + captions,
                       check=True)
        c_ids = np.load(ids_path)
        py_ids = np.array([tok.encode(c) for c in captions])
        same = int((c_ids == py_ids).all(1).sum())
        print('tokenizer: %d of %d captions give identical ids in C and Python'
              % (same, len(captions)))
        if same != len(captions):
            worst = float('inf')
        inputs = {'text': py_ids[:8]}
        for m in ('vision', 'audio', 'depth', 'thermal', 'imu'):
            inputs[m] = np.load(os.path.join(held, m + '.npy'))[pick].astype(np.float32)
        for m, x in inputs.items():
            with torch.no_grad():
                xt = torch.from_numpy(x)
                if m == 'audio':
                    p = net.embed(m, xt[:, 0]).numpy()     # one clip (the file holds one)
                else:
                    p = net.embed(m, xt).numpy()
            c = c_embed(args.build, args.model, m, x.astype(np.int64) if m == 'text' else x, tmp)
            err = float(np.abs(c - p).max() / np.abs(p).max())
            worst = max(worst, err)
            print('%-8s %d samples: max relative error %.2e' % (m, len(x), err))
    sys.exit(0 if worst <= args.tolerance else 1)


if __name__ == '__main__':
    main()
