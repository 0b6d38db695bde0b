#!/usr/bin/python3
"""Evaluates a model file with the C runtime on the held-out scenes (README.md, "Results").

  /usr/bin/python3 models/train/evaluate.py --build build --data DATA \\
      --model models/imagebind-default.gguf [--supervised OUT/supervised-audio.gguf]

Every number comes from the C runtime: the held-out raw media (rendered by generate.py with
parameters outside the training ranges) go through tools/imagebind-preprocess (the elements'
front ends) and tools/imagebind-embed; the prompts through the model file's own tokenizer and
text encoder. This script only compares the vectors the runtime wrote (cosine, argmax) and
prints the table.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generate  # noqa: E402
import world  # noqa: E402

VIEWS = (('vision', 'rgb', True), ('audio', 'f32', False), ('depth', 'depth', True),
         ('thermal', 'thermal', True), ('imu', 'imu', False))


def run(args):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError('%s: %s' % (' '.join(args[:3]), r.stderr.strip()))


def embed(build, model, modality, tensor_path, out_path):
    run([os.path.join(build, 'tools', 'imagebind-embed'), '--model', model, '--modality',
         modality, '--threads', '1', '--output', out_path, tensor_path])
    return np.load(out_path)


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def text_embeddings(build, model, prompts, tmp):
    ids = os.path.join(tmp, 'ids.npy')
    run([os.path.join(build, 'tools', 'imagebind-preprocess'), '--modality', 'text', '--model',
         model, '--output', ids] + prompts)
    return unit(embed(build, model, 'text', ids, os.path.join(tmp, 'text-emb.npy')))


def media_embeddings(build, model, records, modalities, tmp):
    tool = os.path.join(build, 'tools', 'imagebind-preprocess')
    out = {}
    for m, ext, sized in VIEWS:
        if m not in modalities:
            continue
        t = generate.tensors(tool, records, m, ext, sized, tmp)
        path = os.path.join(tmp, m + '-in.npy')
        np.save(path, t)
        out[m] = unit(embed(build, model, m, path, os.path.join(tmp, m + '-emb.npy')))
    return out


def top1(emb, prompts_emb, labels):
    return float(((emb @ prompts_emb.T).argmax(1) == labels).mean())


def markdown(res):
    pct = lambda x: '%.1f' % (100 * x)     # noqa: E731
    best = lambda r: max(r.values())       # noqa: E731
    rows = ['| | top-1 %%, %d held-out scenes, %d classes | prompts |' % (res['n'], res['classes']),
            '| --- | ---: | --- |']
    rows.append('| image, zero-shot | %s | scene |' % pct(res['vision']['scene prompts']))
    for m in ('audio', 'depth', 'thermal', 'imu'):
        rows.append('| %s, emergent zero-shot | %s | scene |' % (m, pct(res[m]['scene prompts'])))
    rows.append('| audio, emergent zero-shot | %s | sound |' % pct(res['audio']['sound prompts']))
    if 'audio supervised' in res:
        sup = res['audio supervised']
        rows.append('| audio, supervised (audio-text pairs) | %s | scene |'
                    % pct(sup['scene prompts']))
        rows.append('| audio, supervised (audio-text pairs) | %s | sound |'
                    % pct(sup['sound prompts']))
        rows.append('| emergent / supervised, audio | %s | best of each |'
                    % pct(best(res['audio']) / best(sup)))
    rows.append('| audio -> video retrieval R@1 (exact scene) | %s | chance %s |'
                % (pct(res['audio->video R@1']), pct(res['chance R@1'])))
    rows.append('| audio -> video retrieval, top hit of the same class | %s | |'
                % pct(res['audio->video same scene']))
    return '\n'.join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--build', default='build')
    ap.add_argument('--data', required=True)
    ap.add_argument('--model', required=True)
    ap.add_argument('--supervised', help='model file whose audio encoder learned from captions')
    ap.add_argument('--json', help='write the numbers here too')
    ap.add_argument('--markdown', action='store_true', help='print the table of RESULTS.md')
    args = ap.parse_args()

    d = os.path.join(args.data, world.HELD_OUT)
    with open(os.path.join(d, 'params.json')) as f:
        records = json.load(f)
    labels = np.array([r['cls'] for r in records])
    image_prompts = [world.image_prompt(s) for s in world.SCENES]
    sound_prompts = [world.sound_prompt(s) for s in world.SCENES]
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        emb = media_embeddings(args.build, args.model, records,
                               [v[0] for v in VIEWS], tmp)
        t_img = text_embeddings(args.build, args.model, image_prompts, tmp)
        t_snd = text_embeddings(args.build, args.model, sound_prompts, tmp)
        for m in emb:
            res[m] = {'scene prompts': top1(emb[m], t_img, labels),
                      'sound prompts': top1(emb[m], t_snd, labels)}
        sim = emb['audio'] @ emb['vision'].T
        best = sim.argmax(1)
        res['audio->video R@1'] = float((best == np.arange(len(labels))).mean())
        res['audio->video same scene'] = float((labels[best] == labels).mean())
        res['chance R@1'] = 1.0 / len(labels)
        if args.supervised:
            sup = media_embeddings(args.build, args.supervised, records, ['audio'], tmp)
            ts_img = text_embeddings(args.build, args.supervised, image_prompts, tmp)
            ts_snd = text_embeddings(args.build, args.supervised, sound_prompts, tmp)
            res['audio supervised'] = {'scene prompts': top1(sup['audio'], ts_img, labels),
                                       'sound prompts': top1(sup['audio'], ts_snd, labels)}
    res['n'] = len(labels)
    res['classes'] = len(world.SCENES)
    print(json.dumps(res, indent=1))
    if args.markdown:
        print(markdown(res))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(res, f, indent=1)


if __name__ == '__main__':
    main()
