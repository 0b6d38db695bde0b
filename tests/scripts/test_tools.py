#!/usr/bin/env python3
"""The command-line tools as a user first meets them, with the shipped model (TAP output).

    tests/scripts/test_tools.py SOURCE_ROOT BUILD_ROOT

- imagebind-embed finds the model as the elements do: without --model the shipped model
  (the same vectors as with --model), $IMAGEBIND_MODEL when set (and an error that says the
  path came from there, or that it is a directory);
- its JSON carries the logit scale and whether the vector is scaled: text vectors have the
  text scale as their norm, vision vectors norm 1;
- imagebind-index and imagebind-tags find the build tree's plugin without GST_PLUGIN_PATH;
  imagebind-index shows progress inside a file (--progress);
- imagebind-search --format json gives the same ranking as the table, scores descending.
"""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

results = []


def check(name, ok, detail=''):
    results.append((name, ok, detail))


def run(cmd, env, **kw):
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=300, **kw)
    return p.returncode, p.stdout.decode('utf-8', 'replace'), p.stderr.decode('utf-8', 'replace')


def norm(v):
    return math.sqrt(sum(x * x for x in v))


def main():
    root, build = (os.path.abspath(a) for a in sys.argv[1:3])
    shipped = os.path.join(root, 'models', 'imagebind-default.gguf')
    if not os.path.isfile(shipped):
        print('1..0 # SKIP the shipped model is absent')
        return 0
    tools = os.path.join(build, 'tools')
    embed = os.path.join(tools, 'imagebind-embed')
    index = os.path.join(tools, 'imagebind-index')
    search = os.path.join(tools, 'imagebind-search')
    tags = os.path.join(tools, 'imagebind-tags')
    tmp = tempfile.mkdtemp(prefix='ib-tools-')

    # No GST_PLUGIN_PATH: the tools must find the build tree's plugin themselves; the system
    # plugins (decoders, test sources) as a user has them.
    env = dict(os.environ)
    for var in ('GST_PLUGIN_PATH', 'GST_PLUGIN_PATH_1_0', 'GST_PLUGIN_SYSTEM_PATH_1_0',
                'IMAGEBIND_MODEL'):
        env.pop(var, None)
    env['GST_REGISTRY_1_0'] = os.path.join(tmp, 'registry.bin')

    # media: a still picture and a 6 s clip with sound
    png = os.path.join(tmp, 'bars.png')
    clip = os.path.join(tmp, 'ball.ogg')
    rc1, _, e1 = run(['gst-launch-1.0', '-q', 'videotestsrc', 'pattern=smpte', 'num-buffers=1',
                      '!', 'pngenc', '!', 'filesink', 'location=' + png], env)
    rc2, _, e2 = run(['gst-launch-1.0', '-q', '-e', 'videotestsrc', 'pattern=ball',
                      'num-buffers=60', '!', 'video/x-raw,framerate=10/1', '!', 'theoraenc', '!',
                      'queue', '!', 'oggmux', 'name=m', '!', 'filesink', 'location=' + clip,
                      'audiotestsrc', 'wave=ticks', 'num-buffers=96', 'samplesperbuffer=1000', '!',
                      'audio/x-raw,rate=16000', '!', 'audioconvert', '!', 'vorbisenc', '!',
                      'queue', '!', 'm.'], env)
    if rc1 or rc2:
        print('1..0 # SKIP cannot make the test media: %s' % (e1 + e2).strip()[:200])
        return 0

    # -- imagebind-embed: the model found without --model; the JSON's scale --
    rc, out, err = run([embed, '-M', 'text', '--text', 'colour bars'], env)
    default_ok = rc == 0
    check('embed without --model uses the shipped model', default_ok, err.strip())
    if default_ok:
        got = json.loads(out)[0]
        rc, out2, err2 = run([embed, '-m', shipped, '-M', 'text', '--text', 'colour bars'], env)
        same = rc == 0 and json.loads(out2)[0]['vector'] == got['vector']
        check('the same vector as with --model models/imagebind-default.gguf', same, err2.strip())
        scale = got.get('logit_scale')
        check('text JSON: logit_scale > 1, scaled true, |vector| = logit_scale',
              isinstance(scale, float) and scale > 1 and got.get('scaled') is True and
              abs(norm(got['vector']) - scale) < 1e-3 * scale,
              'logit_scale %r scaled %r norm %.5f' % (scale, got.get('scaled'),
                                                     norm(got['vector'])))
    rc, out, err = run([embed, '-M', 'vision', png], env)
    if rc == 0:
        got = json.loads(out)[0]
        check('vision JSON: logit_scale 1, scaled false, |vector| = 1',
              got.get('logit_scale') == 1.0 and got.get('scaled') is False and
              abs(norm(got['vector']) - 1) < 1e-4, repr({k: got.get(k) for k in
                                                          ('logit_scale', 'scaled')}))
    else:
        check('vision JSON: logit_scale 1, scaled false, |vector| = 1', False, err.strip())
    env_model = dict(env, IMAGEBIND_MODEL=os.path.join(tmp, 'nope.gguf'))
    rc, _, err = run([embed, '-M', 'text', '--text', 'a'], env_model)
    check('a missing $IMAGEBIND_MODEL: an error saying where the path came from',
          rc == 1 and 'nope.gguf' in err and 'from $IMAGEBIND_MODEL' in err and
          'Unset IMAGEBIND_MODEL' in err, err.strip())
    env_dir = dict(env, IMAGEBIND_MODEL=os.path.join(root, 'models'))
    rc, _, err = run([embed, '-M', 'text', '--text', 'a'], env_dir)
    check('a directory as $IMAGEBIND_MODEL: said so', rc == 1 and 'is a directory' in err,
          err.strip())

    # -- imagebind-index: the build tree's plugin, progress inside a file --
    ibx = os.path.join(tmp, 'media.ibx')
    rc, out, err = run([index, '-o', ibx, '--interval', '0.5', '--progress', '0.001', clip, png],
                       env)
    check('imagebind-index finds the build tree plugin without GST_PLUGIN_PATH',
          rc == 0 and os.path.isfile(ibx), (out + err).strip()[-400:])
    progress = [l for l in err.splitlines() if l.startswith(clip + ': ') and ' of ' in l and
                'embeddings' in l]
    check('imagebind-index --progress: progress lines inside the clip', len(progress) >= 1,
          err.strip()[-400:])

    # -- imagebind-search --format json --
    rc, out, err = run([search, '-x', ibx, '--text', 'colour bars', '-k', '5', '--format',
                        'json'], env)
    try:
        doc = json.loads(out) if rc == 0 else None
    except ValueError:
        doc = None
    if doc is None:
        check('imagebind-search --format json parses', False, (out + err).strip()[-400:])
    else:
        res = doc.get('results', [])
        scores = [r['score'] for r in res]
        check('imagebind-search --format json: results, scores descending, query recorded',
              len(res) == 5 and scores == sorted(scores, reverse=True) and
              doc['query'] == [{'modality': 'text', 'weight': 1.0, 'value': 'colour bars'}] and
              all(set(r) >= {'rank', 'score', 'modality', 'pts', 'duration', 'time', 'source',
                             'model'} for r in res),
              json.dumps(doc)[:400])
        check('the colour bars picture ranks first', res and res[0]['source'] == png,
              res[0]['source'] if res else '')
        rc, table, err = run([search, '-x', ibx, '--text', 'colour bars', '-k', '5'], env)
        rows = [l.split() for l in table.splitlines()[1:] if l.strip()]
        check('the JSON ranking is the table\'s',
              rc == 0 and [r[-1] for r in rows] == [r['source'] for r in res] and
              all(abs(float(r[1]) - x['score']) < 1e-4 for r, x in zip(rows, res)),
              table.strip()[-400:])

    # -- imagebind-tags: the build tree's plugin too --
    rc, out, err = run([tags, 'videotestsrc', 'num-buffers=3', '!', 'videoconvert', '!',
                        'imagebindvision', '!', 'imagebindmatch',
                        'prompts=<bars,ball>', '!', 'fakesink'], env)
    check('imagebind-tags finds the build tree plugin without GST_PLUGIN_PATH',
          rc == 0 and ('bars' in out or 'ball' in out), (out + err).strip()[-400:])

    shutil.rmtree(tmp, ignore_errors=True)
    print('1..%d' % len(results))
    failed = 0
    for n, (name, ok, detail) in enumerate(results, 1):
        print('%s %d - %s' % ('ok' if ok else 'not ok', n, name))
        if not ok:
            failed += 1
            for line in detail.splitlines()[-15:]:
                print('#   %s' % line)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
