#!/usr/bin/python3
"""Renders the synthetic world (world.py) and turns it into the model's input tensors.

  /usr/bin/python3 models/train/generate.py --build build --out DATA [--train 48 --held-out 16]

For every scene: videotestsrc and audiotestsrc render the frame and the 2 s of sound
(gst-launch-1.0 subprocesses), numpy renders the depth map (GRAY16 millimetres), the heat map
(GRAY8) and the IMU trace (float32, 6 channels); then tools/imagebind-preprocess (the
runtime's own front ends, the code the elements run) makes the tensors, so that training sees
exactly what inference will. Writes DATA/<split>/{vision,audio,depth,thermal,imu}.npy (vision
as float16 to halve the disk), labels.npy, params.json, and keeps the raw media of the
held-out split (DATA/held-out/raw/) for the C evaluation.
"""

import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import world  # noqa: E402

SPLITS = {world.TRAIN: 0, world.HELD_OUT: 1}


def gst_launch(args):
    r = subprocess.run(['gst-launch-1.0', '-q'] + args, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError('gst-launch-1.0 %s: %s' % (' '.join(args), r.stderr.strip()))


def props(d):
    return ['%s=%s' % (k, v) for k, v in d.items() if not k.startswith('_')]


def render_video(spec, w, h, path):
    frames = spec.get('_frame', 1)
    gst_launch(['videotestsrc', 'num-buffers=%d' % frames] + props(spec) +
               ['!', 'video/x-raw,width=%d,height=%d,framerate=30/1' % (w, h), '!',
                'videoconvert', '!', 'video/x-raw,format=RGB,width=%d,height=%d' % (w, h), '!',
                'filesink', 'location=' + path])
    if frames > 1:            # keep the last frame only
        data = np.fromfile(path, np.uint8)
        data[-w * h * 3:].tofile(path)


def render_audio(spec, path):
    per = 1600
    n = int(world.AUDIO_RATE * world.AUDIO_SECONDS) // per
    gst_launch(['audiotestsrc', 'num-buffers=%d' % n, 'samplesperbuffer=%d' % per] + props(spec) +
               ['!', 'audioconvert', '!',
                'audio/x-raw,format=F32LE,rate=%d,channels=1' % world.AUDIO_RATE, '!',
                'filesink', 'location=' + path])


def sample(seed, split, cls, i, raw):
    """Renders one scene; returns its record (class, parameters, frame size, raw file paths)."""
    rng = np.random.default_rng([seed, SPLITS[split], cls, i])
    scene = world.SCENES[cls]
    p = scene.params(rng, split)
    w, h = world.FRAME_SIZES[rng.integers(len(world.FRAME_SIZES))]
    stem = os.path.join(raw, '%s-%03d' % (scene.name, i))
    files = {m: '%s.%s' % (stem, m) for m in ('rgb', 'f32', 'depth', 'thermal', 'imu')}
    render_video(scene.video(p), w, h, files['rgb'])
    render_audio(scene.audio(p), files['f32'])
    depth_m = scene.depth(p, w, h, rng)
    np.clip(np.round(depth_m * 1000), 0, 65535).astype('<u2').tofile(files['depth'])
    np.clip(np.round(scene.thermal(p, w, h, rng)), 0, 255).astype(np.uint8).tofile(files['thermal'])
    scene.imu(p, rng).astype('<f4').tofile(files['imu'])
    return dict(cls=cls, name=scene.name, index=i, width=w, height=h, params=p, files=files,
                captions=[world.caption(scene, p, rng) for _ in range(8)])


def preprocess(tool, modality, paths, out, size=None):
    args = [tool, '--modality', modality, '--output', out]
    if size:
        args += ['--width', str(size[0]), '--height', str(size[1])]
    r = subprocess.run(args + paths, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError('%s: %s' % (' '.join(args[:6]), r.stderr.strip()))
    return np.load(out)


def tensors(tool, records, modality, ext, sized, tmp):
    """The tensor of every record for one modality, in record order (frames of one size per
    call of the tool)."""
    groups = {}
    for k, r in enumerate(records):
        groups.setdefault((r['width'], r['height']) if sized else None, []).append(k)
    out = None
    for size, idx in groups.items():
        t = preprocess(tool, modality, [records[k]['files'][ext] for k in idx],
                       os.path.join(tmp, modality + '.npy'), size)
        if out is None:
            out = np.zeros((len(records),) + t.shape[1:], np.float32)
        out[idx] = t
    return out


def generate_split(args, split, per_class, tool):
    d = os.path.join(args.out, split)
    raw = os.path.join(d, 'raw')
    os.makedirs(raw, exist_ok=True)
    jobs = [(c, i) for c in range(len(world.SCENES)) for i in range(per_class)]
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        records = list(pool.map(lambda j: sample(args.seed, split, j[0], j[1], raw), jobs))
    for modality, ext, sized in (('vision', 'rgb', True), ('audio', 'f32', False),
                                 ('depth', 'depth', True), ('thermal', 'thermal', True),
                                 ('imu', 'imu', False)):
        t = tensors(tool, records, modality, ext, sized, d)
        if modality == 'vision':
            t = t.astype(np.float16)
        if modality == 'audio':
            t = t[:, :1]          # a 2 s file gives three identical clips: keep one
        np.save(os.path.join(d, modality + '.npy'), t)
        print('  %s %s %s' % (split, modality, t.shape), flush=True)
    np.save(os.path.join(d, 'labels.npy'), np.array([r['cls'] for r in records], np.int64))
    with open(os.path.join(d, 'params.json'), 'w') as f:
        json.dump(records, f, indent=0)
    if split == world.TRAIN and not args.keep_raw:
        shutil.rmtree(raw)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--build', default='build', help='meson build directory with the tools')
    ap.add_argument('--out', required=True, help='output directory')
    ap.add_argument('--train', type=int, default=48, help='training scenes per class')
    ap.add_argument('--held-out', type=int, default=16, help='held-out scenes per class')
    ap.add_argument('--seed', type=int, default=20261128)
    ap.add_argument('--jobs', type=int, default=2)
    ap.add_argument('--keep-raw', action='store_true', help='keep the raw training media too')
    args = ap.parse_args()
    tool = os.path.join(args.build, 'tools', 'imagebind-preprocess')
    if not os.access(tool, os.X_OK):
        sys.exit('generate.py: %s not found: build the project first (meson compile -C %s)'
                 % (tool, args.build))
    generate_split(args, world.HELD_OUT, args.held_out, tool)
    generate_split(args, world.TRAIN, args.train, tool)


if __name__ == '__main__':
    main()
