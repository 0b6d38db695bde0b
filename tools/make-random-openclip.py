#!/usr/bin/env python3
"""Writes an OpenCLIP checkpoint with random weights in the shapes of a named OpenCLIP model
(open_clip_model.safetensors layout), so that real-size model files can be made, loaded and run
through the elements without downloading weights: for speed measurements only, its embeddings
mean nothing. Standard library only. Convert it as any OpenCLIP checkpoint:

    python3 tools/make-random-openclip.py ViT-B-32 /tmp/vit-b-32-random.safetensors
    python3 models/convert.py /tmp/vit-b-32-random.safetensors vit-b-32.gguf \\
        --preset ViT-B-32 --bpe bpe_simple_vocab_16e6.txt.gz

Values: LayerNorm weights 1 + 0.1 N(0,1), biases 0.02 N(0,1), class token, positions and other
weights 0.02 N(0,1) (OpenCLIP's own initialisation is of that order), logit_scale ln(1/0.07).
They are drawn from one pool of normal numbers, each tensor reading it from its own offset
(a tensor longer than the pool repeats it): fast, deterministic for a seed, and no value is
special to the runtime.
"""
import argparse
import array
import json
import math
import os
import random
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'models'))

from imagebind_gguf.clip import CLIP_PRESETS  # noqa: E402

POOL_SIZE = 1 << 20


def openclip_shapes(cfg):
    """(name, shape) of every tensor of open_clip.model.CLIP built from cfg, in state-dict order."""
    v, t, e = cfg['vision_cfg'], cfg['text_cfg'], cfg['embed_dim']
    grid = v['image_size'] // v['patch_size']
    vw, tw = v['width'], t['width']

    def blocks(prefix, width, layers):
        out = []
        for i in range(layers):
            p = '%stransformer.resblocks.%d.' % (prefix, i)
            out += [(p + 'ln_1.weight', [width]), (p + 'ln_1.bias', [width]),
                    (p + 'attn.in_proj_weight', [3 * width, width]),
                    (p + 'attn.in_proj_bias', [3 * width]),
                    (p + 'attn.out_proj.weight', [width, width]),
                    (p + 'attn.out_proj.bias', [width]),
                    (p + 'ln_2.weight', [width]), (p + 'ln_2.bias', [width]),
                    (p + 'mlp.c_fc.weight', [4 * width, width]), (p + 'mlp.c_fc.bias', [4 * width]),
                    (p + 'mlp.c_proj.weight', [width, 4 * width]),
                    (p + 'mlp.c_proj.bias', [width])]
        return out

    return ([('positional_embedding', [t['context_length'], tw]),
             ('text_projection', [tw, e]),
             ('logit_scale', []),
             ('visual.class_embedding', [vw]),
             ('visual.positional_embedding', [grid * grid + 1, vw]),
             ('visual.proj', [vw, e]),
             ('visual.conv1.weight', [vw, 3, v['patch_size'], v['patch_size']]),
             ('visual.ln_pre.weight', [vw]), ('visual.ln_pre.bias', [vw])]
            + blocks('visual.', vw, v['layers'])
            + [('visual.ln_post.weight', [vw]), ('visual.ln_post.bias', [vw]),
               ('token_embedding.weight', [t['vocab_size'], tw])]
            + blocks('', tw, t['layers'])
            + [('ln_final.weight', [tw]), ('ln_final.bias', [tw])])


def tensor_bytes(name, n, pool, rng):
    """n float32 values for tensor name, little-endian."""
    if name == 'logit_scale':
        return struct.pack('<f', math.log(1 / 0.07))
    is_ln_weight = name.endswith('.weight') and 'ln_' in name
    scale, shift = (0.1, 1.0) if is_ln_weight else (0.02, 0.0)
    start = rng.randrange(POOL_SIZE)
    values = array.array('f', (shift + scale * x for x in pool[start:start + min(n, POOL_SIZE)]))
    if len(values) < min(n, POOL_SIZE):
        values.extend(shift + scale * x for x in pool[:min(n, POOL_SIZE) - len(values)])
    if sys.byteorder != 'little':
        values.byteswap()
    blob = values.tobytes()
    reps, rest = divmod(n, len(values))
    return blob * reps + blob[:rest * 4]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('preset', choices=sorted(CLIP_PRESETS), help='OpenCLIP model name')
    ap.add_argument('output', help='the .safetensors file to write')
    ap.add_argument('--seed', type=int, default=20240)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    pool = [rng.gauss(0.0, 1.0) for _ in range(POOL_SIZE)]
    shapes = openclip_shapes(CLIP_PRESETS[args.preset])
    header, offset = {'__metadata__': {'format': 'pt'}}, 0
    for name, shape in shapes:
        size = 4 * math.prod(shape)
        header[name] = {'dtype': 'F32', 'shape': shape, 'data_offsets': [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)
    with open(args.output, 'wb') as f:
        f.write(struct.pack('<Q', len(text)) + text)
        for name, shape in shapes:
            f.write(tensor_bytes(name, math.prod(shape), pool, rng))
    print('%s: %s with random weights, %d tensors, %.1f M parameters' % (
        args.output, args.preset, len(shapes), offset / 4 / 1e6))


if __name__ == '__main__':
    main()
