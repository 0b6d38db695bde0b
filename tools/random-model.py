#!/usr/bin/env python3
"""Writes a model file of a preset's sizes with random weights (models/GGUF.md), as
convert.py would write the checkpoint: for measuring load, memory and speed from a real
mapped file at imagebind_huge sizes without the official weights.

  python3 tools/random-model.py huge-vision-q8.gguf --preset huge --dtype q8 --modalities vision
  /usr/bin/time -v build/tools/imagebind-bench --model huge-vision-q8.gguf --no-reference

The values are not a trained model's (no tokenizer either); they keep activations of order 1:
matrices uniform in +-1/sqrt(in), LayerNorm weights near 1, small biases and tables. q8 files
hold uniform int8 values with the matching scale. Standard library only; F32 and F16 matrices
repeat one random block of values (writing 5 GB of fresh random floats in pure Python would
take an hour), int8 matrices are fresh random bytes.
"""

import argparse
import os
import random
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'models'))

from convert import add_keys  # noqa: E402
from imagebind_gguf.architecture import (  # noqa: E402
    MODALITIES, NOT_STORED, PRESETS, ModelConfig, gguf_shape, stored_as_f16)
from imagebind_gguf.gguf_writer import GGUFWriter  # noqa: E402
from imagebind_gguf.quantize import SCALE_SUFFIX, is_lookup_table, stored_as_q8  # noqa: E402

POOL = 1 << 16          # random values repeated through F32/F16 tensors
CHUNK = 1 << 22         # bytes per write


def main(argv=None):
    ap = argparse.ArgumentParser(prog='random-model.py', description=__doc__.split('\n')[0])
    ap.add_argument('output')
    ap.add_argument('--preset', choices=sorted(PRESETS), default='huge')
    ap.add_argument('--dtype', choices=('f32', 'f16', 'q8'), default='f32')
    ap.add_argument('--modalities', help='comma-separated subset (default: all)')
    ap.add_argument('--seed', type=int, default=1234)
    args = ap.parse_args(argv)

    config = ModelConfig(dict(PRESETS[args.preset]))
    modalities = [m for m in MODALITIES if m in config.modalities]
    if args.modalities:
        wanted = [m.strip() for m in args.modalities.split(',') if m.strip()]
        bad = [m for m in wanted if m not in modalities]
        if bad:
            ap.error('unknown modalities: %s' % ', '.join(bad))
        modalities = [m for m in modalities if m in wanted]
    rng = random.Random(args.seed)
    pool = [rng.uniform(-1.0, 1.0) for _ in range(POOL)]

    writer = GGUFWriter()
    add_keys(writer, config, modalities, 'random-%s-%s' % (args.preset, args.dtype), None)
    shapes = {}
    for m in modalities:
        for name, shape in config.expected_tensors(m).items():
            if name in NOT_STORED:
                continue
            shapes[name] = shape
            if args.dtype == 'q8' and stored_as_q8(name, shape):
                writer.add_tensor(name, gguf_shape(shape), 'I8')
                writer.add_tensor(name + SCALE_SUFFIX, (shape[0],), 'F32')
            elif ((args.dtype == 'f16' and stored_as_f16(name, shape))
                  or (args.dtype == 'q8' and is_lookup_table(name))):
                writer.add_tensor(name, gguf_shape(shape), 'F16')
            else:
                writer.add_tensor(name, gguf_shape(shape), 'F32')

    def values(name, n, base, spread):
        code = 'e' if writer_types[name] == 'F16' else 'f'
        per = CHUNK // 4
        offset = rng.randrange(POOL)
        done = 0
        while done < n:
            k = min(per, n - done)
            vals = [base + spread * pool[(offset + done + i) % POOL] for i in range(min(k, POOL))]
            block = struct.pack('<%d%s' % (len(vals), code), *vals)
            reps, rest = divmod(k, len(vals))
            yield block * reps + block[:rest * struct.calcsize(code)]
            done += k

    writer_types = {t.name: t.ttype for t in writer.tensors}

    def chunks(info):
        n = info.numel
        if info.name.endswith(SCALE_SUFFIX):
            shape = shapes[info.name[:-len(SCALE_SUFFIX)]]
            cols = 1
            for d in shape[1:]:
                cols *= d
            s = (1.0 / cols ** 0.5) / 127.0
            yield struct.pack('<%df' % n, *([s] * n))
            return
        shape = shapes[info.name]
        if info.ttype == 'I8':
            # uniform in -127..127: 0x80 (-128) becomes 0x81 (-127)
            table = bytes(range(128)) + bytes([0x81]) + bytes(range(129, 256))
            left = n
            while left:
                k = min(left, CHUNK)
                yield rng.randbytes(k).translate(table)
                left -= k
            return
        if len(shape) >= 2 and info.name.endswith('weight'):
            cols = 1
            for d in shape[1:]:
                cols *= d
            yield from values(info.name, n, 0.0, 1.0 / cols ** 0.5)
        elif 'norm' in info.name or info.name.endswith('.0.weight'):
            yield from values(info.name, n, 1.0, 0.1)       # LayerNorm weights
        else:
            yield from values(info.name, n, 0.0, 0.02)      # biases, tables, tokens, scales

    size = writer.write(args.output, chunks)
    print('wrote %s: %s, %s, %d bytes' % (args.output, ', '.join(modalities), args.dtype, size))
    return 0


if __name__ == '__main__':
    sys.exit(main())
