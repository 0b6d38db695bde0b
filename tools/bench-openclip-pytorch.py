#!/usr/bin/python3
"""Times OpenCLIP's own model code on PyTorch (CPU, float32) at the shapes that
`imagebind-bench --preset openclip-*` times in the C runtime, for the README's comparison.

Not part of the build or the tests: it needs Debian's python3-torch (for /usr/bin/python3, not
in .ci/install-deps) and an OpenCLIP source tree that this project does not ship:

    apt install python3-torch python3-torchvision python3-regex python3-tqdm python3-wcwidth
    # OpenCLIP 2.20.0 (the version the conformance fixtures were made with; it runs on torch
    # 1.13) and ftfy, which Debian 12 does not package (imported by OpenCLIP's tokenizer):
    git clone -b v2.20.0 https://github.com/mlfoundations/open_clip /tmp/open_clip
    git clone -b v6.3.1 https://github.com/rspeer/python-ftfy /tmp/ftfy
    chrt -f 1 /usr/bin/python3 tools/bench-openclip-pytorch.py \\
        --open-clip /tmp/open_clip/src --pythonpath /tmp/ftfy --threads 2 ViT-B-32

Random weights (OpenCLIP's initialisation): speed does not depend on the values. Batch 1, one
image of the model's size and one 12-token prompt padded to the context length, under
torch.inference_mode(); the median of --runs timed calls after one warm-up. GFLOP counts are
the ones imagebind-bench uses (2 x multiply-adds of every product, all 77 text positions).
"""
import argparse
import ctypes
import os
import statistics
import sys
import time


def openblas_info():
    """The OpenBLAS cores in the process. Debian's torch links libblas.so.3 (the alternatives'
    choice, OpenBLAS's copy in openblas-pthread/) ahead of libopenblas.so.0; its sgemm_ is the
    one torch's products call."""
    found = []
    for name in ('libblas.so.3', 'libopenblas.so.0'):
        try:
            lib = ctypes.CDLL(name, mode=os.RTLD_NOLOAD)
        except OSError:
            continue
        try:
            lib.openblas_get_corename.restype = ctypes.c_char_p
            lib.openblas_get_config.restype = ctypes.c_char_p
            found.append('%s: %s, core %s' % (name, lib.openblas_get_config().decode(),
                                              lib.openblas_get_corename().decode()))
        except AttributeError:
            found.append('%s (not OpenBLAS)' % name)
    return '; '.join(found) or 'no OpenBLAS loaded'


def tower_gflop(width, layers, tokens, stem_macs, out_dim):
    block = (2 * tokens * width * 3 * width + 2 * 2 * tokens * tokens * width
             + 2 * tokens * width * width + 2 * 2 * tokens * width * 4 * width)
    return (2 * stem_macs + layers * block + 2 * width * out_dim) / 1e9


def median_seconds(fn, runs):
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('models', nargs='+', help='OpenCLIP model names, e.g. ViT-B-32 ViT-H-14')
    parser.add_argument('--open-clip', required=True, help="OpenCLIP's src directory")
    parser.add_argument('--pythonpath', action='append', default=[],
                        help='more directories for sys.path (e.g. an ftfy checkout)')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--runs', type=int, default=5)
    args = parser.parse_args()

    sys.path[:0] = [args.open_clip] + args.pythonpath
    import torch
    import open_clip
    from open_clip.version import __version__ as open_clip_version

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print('PyTorch %s, OpenCLIP %s, %d threads, runs: %d (median)' % (
        torch.__version__, open_clip_version, torch.get_num_threads(), args.runs))
    print('BLAS: %s' % openblas_info())
    for name in args.models:
        cfg = open_clip.get_model_config(name)
        if cfg is None:
            sys.exit('unknown OpenCLIP model %s' % name)
        model = open_clip.create_model(name, precision='fp32', device='cpu').eval()
        v, t = cfg['vision_cfg'], cfg['text_cfg']
        size, patch = v['image_size'], v['patch_size']
        grid = size // patch
        context = t.get('context_length', 77)
        image = torch.randn(1, 3, size, size)
        ids = torch.zeros(1, context, dtype=torch.long)
        ids[0, 0] = 49406
        ids[0, 1:11] = torch.arange(1, 11) * 17 + 320
        ids[0, 11] = 49407
        gflop = {
            'vision': tower_gflop(v['width'], v['layers'], grid * grid + 1,
                                  grid * grid * 3 * patch * patch * v['width'], cfg['embed_dim']),
            'text': tower_gflop(t['width'], t['layers'], context, 0, cfg['embed_dim']),
        }
        with torch.inference_mode():
            seconds = {
                'vision': median_seconds(lambda: model.encode_image(image), args.runs),
                'text': median_seconds(lambda: model.encode_text(ids), args.runs),
            }
        for tower in ('vision', 'text'):
            print('%-10s %-6s %9.1f ms  %7.2f GFLOP  %6.1f GFLOP/s' % (
                name, tower, seconds[tower] * 1e3, gflop[tower], gflop[tower] / seconds[tower]))
        del model


if __name__ == '__main__':
    main()
