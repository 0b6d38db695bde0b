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
import re
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


# The same held-out media through the elements: raw files concatenated into one stream per
# modality (and frame size), parsed by rawvideoparse / rawaudioparse, embedded by the encoder
# element in sync mode, scored by imagebindmatch; tools/imagebind-tags prints each result.
ELEMENT_PIPELINES = {
    'vision': ('rawvideoparse format=rgb width={w} height={h} framerate=1/1', 'imagebindvision'),
    'depth': ('rawvideoparse format=gray16-le width={w} height={h} framerate=1/1',
              'imagebinddepth'),
    'thermal': ('rawvideoparse format=gray8 width={w} height={h} framerate=1/1',
                'imagebindthermal'),
    'audio': ('rawaudioparse format=pcm pcm-format=f32le sample-rate=16000 num-channels=1',
              'imagebindaudio'),
    'imu': ('rawaudioparse format=pcm pcm-format=f32le sample-rate=200 num-channels=6',
            'imagebindimu'),
}
TAG_LINE = re.compile(r'^\S+\s+\w+: (.*) \(([0-9.]+)\)$')


def prompts_property(prompts):
    return 'prompts="<%s>"' % ', '.join('\\"%s\\"' % p for p in prompts)


def element_top1(build, model, records, m, ext, sized, prompts, tmp):
    """Top-1 accuracy of `prompts` on the held-out media of modality m through the elements."""
    env = dict(os.environ, GST_PLUGIN_PATH_1_0=os.path.join(build, 'plugin'),
               GST_REGISTRY_1_0=os.path.join(tmp, 'registry.bin'))
    groups = {}
    for k, r in enumerate(records):
        groups.setdefault((r['width'], r['height']) if sized else (0, 0), []).append(k)
    correct = 0
    for (w, h), idx in groups.items():
        stream = os.path.join(tmp, 'stream.raw')
        with open(stream, 'wb') as out:
            for k in idx:
                with open(records[k]['files'][ext], 'rb') as f:
                    out.write(f.read())
        parse, encoder = ELEMENT_PIPELINES[m]
        pipeline = ('filesrc location=%s ! %s ! %s model=%s sync=true n-threads=1 ! '
                    'imagebindmatch model=%s %s ! fakesink'
                    % (stream, parse.format(w=w, h=h), encoder, model, model,
                       prompts_property(prompts)))
        r = subprocess.run([os.path.join(build, 'tools', 'imagebind-tags'), '--all', pipeline],
                           capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise RuntimeError('imagebind-tags %s: %s' % (pipeline, r.stderr.strip()))
        tags = [TAG_LINE.match(line).group(1) for line in r.stdout.splitlines()]
        if len(tags) != len(idx):
            raise RuntimeError('%s: %d results for %d inputs' % (m, len(tags), len(idx)))
        correct += sum(prompts.index(t) == records[k]['cls'] for t, k in zip(tags, idx))
    return correct / len(records)


def top1(emb, prompts_emb, labels):
    return float(((emb @ prompts_emb.T).argmax(1) == labels).mean())


def markdown(res):
    """The table of RESULTS.md: top-1 % from the tools (and through the elements, if run)."""
    pct = lambda x: '%.1f' % (100 * x)     # noqa: E731
    el = res.get('through the elements', {})
    rows = ['| modality | prompts | top-1 %, runtime | top-1 %, elements |',
            '| --- | --- | ---: | ---: |']
    for m, name in (('vision', 'image, zero-shot'), ('audio', 'audio, emergent'),
                    ('depth', 'depth, emergent'), ('thermal', 'thermal, emergent'),
                    ('imu', 'IMU, emergent')):
        for kind in ('scene prompts', 'sound prompts'):
            rows.append('| %s | %s | %s | %s |' % (name, kind.split()[0], pct(res[m][kind]),
                                                  pct(el[m][kind]) if m in el else ''))
    if 'audio supervised' in res:
        sup = res['audio supervised']
        for kind in ('scene prompts', 'sound prompts'):
            rows.append('| audio, supervised (audio-text pairs) | %s | %s | |'
                        % (kind.split()[0], pct(sup[kind])))
        rows.append('| emergent / supervised, audio (best prompts of each) | | %s | |'
                    % pct(max(res['audio'].values()) / max(sup.values())))
    rows.append('| audio -> video retrieval R@1, exact scene (chance %s) | | %s | |'
                % (pct(res['chance R@1']), pct(res['audio->video R@1'])))
    rows.append('| audio -> video retrieval, top frame of the same class | | %s | |'
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
    ap.add_argument('--elements', action='store_true',
                    help='also classify through the GStreamer elements (encoders + imagebindmatch)')
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
        if args.elements:
            res['through the elements'] = {
                m: {'scene prompts': element_top1(args.build, args.model, records, m, ext, sized,
                                                  image_prompts, tmp),
                    'sound prompts': element_top1(args.build, args.model, records, m, ext, sized,
                                                  sound_prompts, tmp)}
                for m, ext, sized in VIEWS}
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
