#!/usr/bin/env python3
"""Tests of models/convert.py (standard library only).

The tiny conformance checkpoint is converted to GGUF (f32 and f16) and the files are read back
with a small reader written here independently of the converter: every tensor's shape, sum and
first values are compared with tiny/state_dict_index.json (made by the official code), the keys
with tiny/config.json. Hostile and mismatched checkpoints must be refused with exit status 1.
"""

import collections
import contextlib
import gzip
import io
import json
import math
import os
import pickle
import random
import struct
import subprocess
import sys
import tempfile
import types
import unittest
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.join(HERE, '..', '..')
CONVERT = os.path.join(SOURCE_ROOT, 'models', 'convert.py')
sys.path.insert(0, os.path.join(SOURCE_ROOT, 'models'))
import convert as convert_module  # noqa: E402  (in-process runs of the refusals)
from imagebind_gguf import checkpoint as ckpt_module  # noqa: E402
from imagebind_gguf import clip as clip_module  # noqa: E402
from imagebind_gguf.safetensors import SafetensorsFile  # noqa: E402


def conformance_dir():
    for var in ('IMAGEBIND_CONFORMANCE_DIR', 'IMAGEBIND_CONFORMANCE_DIR_DEFAULT'):
        d = os.environ.get(var)
        if d and os.path.isdir(d):
            return d
    d = os.path.join(SOURCE_ROOT, '..', 'shared', 'conformance')
    return d if os.path.isdir(d) else None


CONF = conformance_dir()


def fixture(*parts):
    return os.path.join(CONF, *parts)


def read_json(path):
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def write_json(path, doc):
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(doc, f)


def run_convert(*args):
    return subprocess.run([sys.executable, CONVERT] + [str(a) for a in args],
                          capture_output=True, text=True)


def convert_here(*args):
    """convert.py's main() in this process (fast, for refusals): (status, stdout, stderr).
    An exception other than the reported errors propagates: it would be a traceback."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = convert_module.main([str(a) for a in args])
        except SystemExit as e:       # argparse
            status = e.code
    return status, out.getvalue(), err.getvalue()


# -- an independent GGUF reader --

class Gguf:
    TYPE_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    TYPE_CODES = {0: 'B', 1: 'b', 2: 'H', 3: 'h', 4: 'I', 5: 'i', 6: 'f', 7: '?', 10: 'Q',
                  11: 'q', 12: 'd'}

    def __init__(self, path):
        with open(path, 'rb') as f:
            self.buf = f.read()
        self.pos = 0
        assert self.buf[:4] == b'GGUF', 'bad magic'
        self.pos = 4
        version, n_tensors, n_kv = self._unpack('<IQQ')
        assert version == 3
        self.kv = collections.OrderedDict()
        self.kv_types = {}
        for _ in range(n_kv):
            key = self._string()
            (vtype,) = self._unpack('<I')
            self.kv_types[key] = vtype
            self.kv[key] = self._value(vtype)
        self.alignment = self.kv.get('general.alignment', 32)
        self.tensors = collections.OrderedDict()
        for _ in range(n_tensors):
            name = self._string()
            (n_dims,) = self._unpack('<I')
            ne = self._unpack('<%dQ' % n_dims)
            ttype, offset = self._unpack('<IQ')
            self.tensors[name] = (ne, ttype, offset)
        self.data_start = self.pos + (-self.pos) % self.alignment

    def _unpack(self, fmt):
        vals = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return vals

    def _string(self):
        (n,) = self._unpack('<Q')
        s = self.buf[self.pos:self.pos + n].decode('utf-8')
        self.pos += n
        return s

    def _value(self, vtype):
        if vtype == 8:
            return self._string()
        if vtype == 9:
            etype, count = self._unpack('<IQ')
            return [self._value(etype) for _ in range(count)]
        (v,) = self._unpack('<' + self.TYPE_CODES[vtype])
        return v

    def values(self, name):
        ne, ttype, offset = self.tensors[name]
        n = 1
        for d in ne:
            n *= d
        code, size = {0: ('f', 4), 1: ('e', 2), 24: ('b', 1)}[ttype]
        start = self.data_start + offset
        assert start + n * size <= len(self.buf), name
        return struct.unpack_from('<%d%s' % (n, code), self.buf, start)


def torch_shape(ne, shape_len):
    return tuple(reversed(ne)) if shape_len else ()


def stored_shape(shape):
    """GGUF keeps at most 4 dimensions: (D, 3, kt, kh, kw) is stored as (D, 3*kt, kh, kw)."""
    shape = tuple(shape)
    if len(shape) == 5:
        shape = (shape[0], shape[1] * shape[2]) + shape[3:]
    return shape


def f32(x):
    return struct.unpack('<f', struct.pack('<f', x))[0]


# -- building .pth files without torch: fake torch modules make pickle emit the same globals --

def _fake_torch():
    torch = types.ModuleType('torch')
    utils = types.ModuleType('torch._utils')

    def _rebuild_tensor_v2(*args):
        raise AssertionError('only pickled, never called')
    _rebuild_tensor_v2.__module__ = 'torch._utils'
    _rebuild_tensor_v2.__qualname__ = '_rebuild_tensor_v2'
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    for name in ('FloatStorage', 'HalfStorage', 'LongStorage'):
        cls = type(name, (), {'__module__': 'torch'})
        setattr(torch, name, cls)
    return torch, utils


class FakeTensor:
    """A tensor to pickle: storage key and type, offset, size, stride."""

    def __init__(self, key, storage_type, numel, offset, size, stride):
        self.storage = (storage_type, key, numel)
        self.args = (offset, tuple(size), tuple(stride))


def write_pth(path, entries, storages, prefix='archive'):
    """entries: name -> FakeTensor (or any picklable object); storages: key -> bytes."""
    torch, utils = _fake_torch()
    saved = {k: sys.modules.get(k) for k in ('torch', 'torch._utils')}
    sys.modules['torch'], sys.modules['torch._utils'] = torch, utils
    try:
        class P(pickle.Pickler):
            def persistent_id(self, obj):
                return obj if isinstance(obj, tuple) and obj[:1] == ('storage',) else None

            def reducer_override(self, obj):
                if isinstance(obj, FakeTensor):
                    stype, key, numel = obj.storage
                    pid = ('storage', getattr(torch, stype), key, 'cpu', numel)
                    return (utils._rebuild_tensor_v2,
                            (pid,) + obj.args + (False, collections.OrderedDict()))
                return NotImplemented

        buf = io.BytesIO()
        P(buf, protocol=2).dump(collections.OrderedDict(entries))
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as z:
        z.writestr(prefix + '/data.pkl', buf.getvalue())
        for key, data in storages.items():
            z.writestr(prefix + '/data/' + key, data)
        z.writestr(prefix + '/version', '3\n')


class TinyCheckpoint:
    """The tiny .pth, parsed here independently (opcode-level, no globals resolved), so tests
    can rebuild variants of it."""

    def __init__(self, path):
        self.z = zipfile.ZipFile(path)
        pkl = [n for n in self.z.namelist() if n.endswith('/data.pkl')][0]
        self.prefix = pkl[:-len('data.pkl')]

        class RecordUnpickler(pickle.Unpickler):
            # resolves the three globals the tiny file uses into plain records
            def find_class(self, module, name):
                if (module, name) == ('collections', 'OrderedDict'):
                    return collections.OrderedDict
                if (module, name) == ('torch._utils', '_rebuild_tensor_v2'):
                    return lambda storage, offset, size, stride, *rest: (storage, offset,
                                                                        size, stride)
                if module == 'torch':
                    return name
                raise AssertionError('unexpected global %s.%s' % (module, name))

            def persistent_load(self, pid):
                return pid

        self.entries = RecordUnpickler(io.BytesIO(self.z.read(pkl))).load()

    def storage(self, key):
        return self.z.read(self.prefix + 'data/' + key)

    def floats(self, name):
        pid, offset, size, stride = self.entries[name]
        data = self.storage(pid[2])
        n = 1
        for d in size:
            n *= d
        return struct.unpack_from('<%df' % n, data, offset * 4)


@unittest.skipIf(CONF is None, 'conformance fixtures absent')
class ConvertTiny(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.index = read_json(fixture('tiny', 'state_dict_index.json'))['tensors']
        cls.config = read_json(fixture('tiny', 'config.json'))
        cls.files = {}
        for dtype in ('f32', 'f16'):
            out = os.path.join(cls.tmp.name, 'tiny-%s.gguf' % dtype)
            r = run_convert(fixture('tiny', 'imagebind_tiny.pth'), out,
                            '--config', fixture('tiny', 'config.json'), '--dtype', dtype,
                            '--bpe', fixture('preprocess', 'bpe_simple_vocab_16e6.txt.gz'),
                            '--name', 'tiny-test')
            assert r.returncode == 0, r.stderr
            cls.files[dtype] = Gguf(out)
            cls.stdout = r.stdout

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def check_tensors(self, g, half):
        stored = [t for t in self.index if t['name'] != 'modality_preprocessors.text.mask']
        self.assertEqual(len(stored), 210)
        self.assertEqual(list(g.tensors), [t['name'] for t in stored])   # file order kept
        self.assertNotIn('modality_preprocessors.text.mask', g.tensors)
        for t in stored:
            name = t['name']
            ne, ttype, offset = g.tensors[name]
            with self.subTest(tensor=name):
                self.assertEqual(torch_shape(ne, len(t['shape'])), stored_shape(t['shape']))
                if not t['shape']:
                    self.assertEqual(ne, (1,))
                self.assertEqual(offset % 32, 0)
                matrix = (len(t['shape']) >= 2 and name.endswith('weight')
                          and not name.endswith('attn.in_proj_weight'))
                self.assertEqual(ttype, 1 if (half and matrix) else 0)
                vals = g.values(name)
                self.assertEqual(len(vals), t['numel'])
                if ttype == 0:
                    for got, ref in zip(vals, t['first']):
                        self.assertEqual(got, f32(ref))
                    self.assertAlmostEqual(math.fsum(vals), t['sum_finite'],
                                           delta=1e-9 * math.fsum(map(abs, vals)) + 1e-12)
                else:
                    for got, ref in zip(vals, t['first']):
                        self.assertLessEqual(abs(got - ref), abs(ref) * 2.0 ** -11 + 2.0 ** -25)
                    self.assertAlmostEqual(math.fsum(vals), t['sum_finite'],
                                           delta=2.0 ** -11 * math.fsum(map(abs, vals)))

    def test_f32_tensors(self):
        self.check_tensors(self.files['f32'], half=False)

    def test_f16_tensors(self):
        self.check_tensors(self.files['f16'], half=True)

    def test_f16_policy(self):
        types_ = {n: tt for n, (ne, tt, off) in self.files['f16'].tensors.items()}
        for n in ('modality_preprocessors.text.token_embedding.weight',
                  'modality_preprocessors.vision.rgbt_stem.proj.1.weight',
                  'modality_preprocessors.imu.imu_stem.proj.weight',
                  'modality_trunks.thermal.blocks.1.attn.out_proj.weight',
                  'modality_trunks.vision.blocks.0.mlp.fc2.weight',
                  'modality_heads.imu.3.weight', 'modality_heads.text.proj.1.weight'):
            self.assertEqual(types_[n], 1, n)
        for n in ('modality_preprocessors.vision.pos_embedding_helper.pos_embed',
                  'modality_preprocessors.text.pos_embed', 'modality_preprocessors.audio.cls_token',
                  'modality_trunks.depth.blocks.0.attn.bias_k',
                  'modality_trunks.depth.blocks.0.attn.bias_v',
                  'modality_trunks.vision.pre_transformer_layer.0.weight',
                  'modality_trunks.audio.blocks.0.norm_1.weight',
                  'modality_trunks.audio.blocks.0.attn.in_proj_bias',
                  'modality_trunks.text.blocks.1.attn.in_proj_weight',
                  'modality_postprocessors.text.1.log_logit_scale'):
            self.assertEqual(types_[n], 0, n)

    def test_f16_rounds_to_nearest_even(self):
        # every stored half must be the correctly rounded float32 value
        tiny = TinyCheckpoint(fixture('tiny', 'imagebind_tiny.pth'))
        g = self.files['f16']
        name = 'modality_trunks.audio.blocks.1.mlp.fc1.weight'
        self.assertEqual(g.tensors[name][1], 1)
        ref = struct.unpack('<%de' % len(tiny.floats(name)),
                            struct.pack('<%de' % len(tiny.floats(name)), *tiny.floats(name)))
        self.assertEqual(g.values(name), ref)

    def test_data_layout(self):
        g = self.files['f32']
        self.assertTrue(all(1 <= len(ne) <= 4 for ne, tt, off in g.tensors.values()))
        self.assertEqual(g.tensors['modality_preprocessors.vision.rgbt_stem.proj.1.weight'][0],
                         (14, 14, 6, 64))
        self.assertEqual(g.tensors['modality_postprocessors.text.1.log_logit_scale'][0], (1,))
        self.assertEqual(g.tensors['modality_trunks.text.blocks.0.attn.in_proj_weight'][0],
                         (64, 192))
        self.assertEqual(g.data_start % 32, 0)
        end = max(off + math.prod(ne) * (4 if tt == 0 else 2)
                  for ne, tt, off in g.tensors.values())
        self.assertEqual(len(g.buf), g.data_start + end)
        # tensors do not overlap
        spans = sorted((off, off + math.prod(ne) * 4) for ne, tt, off in g.tensors.values())
        for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
            self.assertLessEqual(a1, b0)

    def test_keys(self):
        args = self.config['constructor_args']
        for g in self.files.values():
            kv = g.kv
            self.assertEqual(kv['general.architecture'], 'imagebind')
            self.assertEqual(kv['general.name'], 'tiny-test')
            self.assertEqual(kv['general.alignment'], 32)
            self.assertEqual(kv['imagebind.out_embed_dim'], args['out_embed_dim'])
            self.assertEqual(kv['imagebind.modalities'],
                             ['vision', 'text', 'audio', 'depth', 'thermal', 'imu'])
            for m, info in self.config['modalities'].items():
                self.assertEqual(kv['imagebind.%s.embed_dim' % m], args[m + '_embed_dim'])
                self.assertEqual(kv['imagebind.%s.embed_dim' % m], info['embed_dim'])
                self.assertEqual(kv['imagebind.%s.num_blocks' % m], info['num_blocks'])
                self.assertEqual(kv['imagebind.%s.num_heads' % m], info['num_heads'])
                self.assertEqual(kv_type(g, 'imagebind.%s.num_heads' % m), 4)
            self.assertEqual(kv['imagebind.vision.kernel_size'], args['kernel_size'])
            self.assertEqual(kv['imagebind.vision.image_size'], 224)
            self.assertEqual(kv['imagebind.vision.video_frames'], args['video_frames'])
            self.assertEqual(kv['imagebind.text.context_length'], 77)
            self.assertEqual(kv['imagebind.text.vocab_size'], 49408)
            self.assertEqual(kv['imagebind.audio.kernel_size'], args['audio_kernel_size'])
            self.assertEqual(kv['imagebind.audio.stride'], args['audio_stride'])
            self.assertEqual(kv['imagebind.audio.num_mel_bins'], args['audio_num_mel_bins'])
            self.assertEqual(kv['imagebind.audio.target_len'], args['audio_target_len'])
            self.assertEqual(kv['imagebind.audio.sample_rate'], 16000)
            self.assertEqual(kv['imagebind.audio.clip_duration'], 2.0)
            self.assertEqual(kv['imagebind.audio.clips_per_video'], 3)
            self.assertEqual(kv['imagebind.audio.fbank_mean'], f32(-4.268))
            self.assertEqual(kv['imagebind.audio.fbank_std'], f32(9.138))
            self.assertEqual(kv_type(g, 'imagebind.audio.fbank_std'), 6)
            self.assertEqual(kv['imagebind.depth.kernel_size'], args['depth_kernel_size'])
            self.assertEqual(kv['imagebind.thermal.kernel_size'], args['thermal_kernel_size'])
            self.assertEqual(kv['imagebind.imu.kernel_size'], 8)
            self.assertEqual(kv['imagebind.imu.num_samples'], 2000)
            self.assertEqual(kv['tokenizer.ggml.model'], 'clip-bpe')

    def test_merges(self):
        import gzip
        merges = self.files['f32'].kv['tokenizer.ggml.merges']
        self.assertEqual(len(merges), 48894)
        with gzip.open(fixture('preprocess', 'bpe_simple_vocab_16e6.txt.gz'), 'rt',
                       encoding='utf-8') as f:
            lines = f.read().split('\n')
        self.assertEqual(merges[0], 'i n')
        self.assertEqual(merges, lines[1:48895])
        self.assertEqual(merges[-1], 'jeky ll</w>')

    def test_summary(self):
        self.assertIn('210 tensors', self.stdout)
        for m in ('vision', 'text', 'audio', 'depth', 'thermal', 'imu'):
            self.assertIn(m, self.stdout)
        self.assertIn('48894 BPE merges', self.stdout)


def kv_type(g, key):
    return g.kv_types[key]


class HugePreset(unittest.TestCase):
    """The preset's expected tensors against the parameter counts measured on the official
    imagebind_huge (ARCHITECTURE.md section 6); buffers (the text mask and the fixed
    log-logit-scales) are not parameters."""

    def test_parameter_counts(self):
        sys.path.insert(0, os.path.join(SOURCE_ROOT, 'models'))
        try:
            from imagebind_gguf.architecture import HUGE_PRESET, ModelConfig
        finally:
            sys.path.pop(0)
        measured = {'vision': 632829440, 'text': 354032641, 'audio': 86235648,
                    'depth': 21871872, 'thermal': 86211072, 'imu': 19600384}
        config = ModelConfig(dict(HUGE_PRESET))
        total = 0
        for m, want in measured.items():
            count = 0
            for name, shape in config.expected_tensors(m).items():
                if name.endswith('.mask') or (m != 'text' and name.endswith('log_logit_scale')):
                    continue
                count += math.prod(shape)
            self.assertEqual(count, want, m)
            total += count
        self.assertEqual(total, 1200781057)
        self.assertEqual([config.num_tokens(m) for m in measured], [257, 77, 229, 197, 197, 251])


@unittest.skipIf(CONF is None, 'conformance fixtures absent')
class ConvertRefusals(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def test_malicious_pickle_is_not_executed(self):
        marker = self.path('pwned')

        class Payload:
            def __reduce__(self):
                return (os.system, ('touch ' + marker,))

        for entries in ({'x': Payload()},
                        collections.OrderedDict(a=Payload())):
            pth = self.path('evil.pth')
            write_pth(pth, entries, {})
            r = run_convert(pth, self.path('evil.gguf'), '--preset', 'huge')
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn('refusing to load', r.stderr)
            self.assertIn('system', r.stderr)
            self.assertIn('may be malicious', r.stderr)
            self.assertNotIn('Traceback', r.stderr)
            self.assertFalse(os.path.exists(marker))
            self.assertFalse(os.path.exists(self.path('evil.gguf')))
        # the marker mechanism works: unpickling it for real would create the file
        pickle.loads(pickle.dumps(Payload()))
        self.assertTrue(os.path.exists(marker))

    def test_builtins_eval_refused(self):
        # GLOBAL builtins.eval by hand (protocol 0 opcodes), as an attacker would write it
        pkl = b"cbuiltins\neval\n(Vopen('" + self.path('x').encode() + b"','w')\ntR."
        pth = self.path('evil2.pth')
        with zipfile.ZipFile(pth, 'w') as z:
            z.writestr('evil2/data.pkl', pkl)
            z.writestr('evil2/version', '3\n')
        r = run_convert(pth, self.path('o.gguf'), '--preset', 'huge')
        self.assertEqual(r.returncode, 1)
        self.assertIn('refusing to load builtins.eval', r.stderr)
        self.assertFalse(os.path.exists(self.path('x')))

    def test_config_width_mismatch(self):
        cfg = read_json(fixture('tiny', 'config.json'))
        cfg['constructor_args']['depth_embed_dim'] = 80
        cfg['constructor_args']['depth_num_heads'] = 5
        path = self.path('cfg.json')
        write_json(path, cfg)
        out = self.path('o.gguf')
        r = run_convert(fixture('tiny', 'imagebind_tiny.pth'), out, '--config', path)
        self.assertEqual(r.returncode, 1)
        self.assertIn('modality_preprocessors.depth.cls_token', r.stderr)
        self.assertIn('(1, 1, 40)', r.stderr)
        self.assertIn('(1, 1, 80)', r.stderr)
        self.assertIn('shape mismatches', r.stderr)
        self.assertNotIn('Traceback', r.stderr)
        self.assertFalse(os.path.exists(out))

    def test_block_count_mismatch(self):
        cfg = read_json(fixture('tiny', 'config.json'))
        cfg['constructor_args']['audio_num_blocks'] = 3
        cfg['constructor_args']['imu_num_blocks'] = 1
        path = self.path('cfg.json')
        write_json(path, cfg)
        r = run_convert(fixture('tiny', 'imagebind_tiny.pth'), self.path('o.gguf'),
                        '--config', path)
        self.assertEqual(r.returncode, 1)
        self.assertIn('missing tensors', r.stderr)
        self.assertIn('modality_trunks.audio.blocks.2.attn.in_proj_weight', r.stderr)
        self.assertIn('unexpected tensors', r.stderr)
        self.assertIn('modality_trunks.imu.blocks.1.', r.stderr)

    def test_huge_preset_refuses_tiny(self):
        r = run_convert(fixture('tiny', 'imagebind_tiny.pth'), self.path('o.gguf'),
                        '--preset', 'huge')
        self.assertEqual(r.returncode, 1)
        self.assertIn('modality_preprocessors.vision.cls_token: checkpoint (1, 1, 64), '
                      'config expects (1, 1, 1280)', r.stderr)

    def test_not_a_zip(self):
        path = self.path('legacy.pth')
        with open(path, 'wb') as f:
            f.write(pickle.dumps({'a': 1}))
        r = run_convert(path, self.path('o.gguf'), '--preset', 'huge')
        self.assertEqual(r.returncode, 1)
        self.assertIn('not a zip file', r.stderr)
        self.assertNotIn('Traceback', r.stderr)

    def test_missing_file(self):
        r = run_convert(self.path('nope.pth'), self.path('o.gguf'), '--preset', 'huge')
        self.assertEqual(r.returncode, 1)
        self.assertIn('no such file', r.stderr)


@unittest.skipIf(CONF is None, 'conformance fixtures absent')
class ConvertRewritten(unittest.TestCase):
    """Variants of the tiny checkpoint rebuilt here: a subset of modalities; views with
    offsets, strides and half storage; DataParallel prefixes and training-checkpoint wrappers;
    OpenAI's TorchScript archives refused."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.tiny = TinyCheckpoint(fixture('tiny', 'imagebind_tiny.pth'))
        cls.reference = os.path.join(cls.tmp.name, 'ref.gguf')
        r = run_convert(fixture('tiny', 'imagebind_tiny.pth'), cls.reference,
                        '--config', fixture('tiny', 'config.json'))
        assert r.returncode == 0, r.stderr
        cls.ref = Gguf(cls.reference)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def rebuild(self, keep=lambda name: True, transform=None):
        """The tiny checkpoint re-pickled; transform(name, floats, shape) may return
        (storage_type, storage_bytes, offset, stride) for a different layout."""
        entries, storages = collections.OrderedDict(), {}
        for i, (name, (pid, offset, size, stride)) in enumerate(self.tiny.entries.items()):
            if not keep(name):
                continue
            key = 's%d' % i
            vals = self.tiny.floats(name)
            layout = transform(name, vals, size) if transform else None
            if layout is None:
                layout = ('FloatStorage', struct.pack('<%df' % len(vals), *vals), 0,
                          contiguous_stride(size))
            stype_name, data, off, strides = layout
            storages[key] = data
            entries[name] = FakeTensor(key, stype_name, len(data) // (2 if 'Half' in stype_name
                                                                   else 4),
                                       off, size, strides)
        path = os.path.join(self.tmp.name, 'rebuilt.pth')
        write_pth(path, entries, storages, prefix='some_other_stem')
        return path

    def test_subset_of_modalities(self):
        path = self.rebuild(keep=lambda n: '.imu.' not in n and '.depth.' not in n)
        out = os.path.join(self.tmp.name, 'subset.gguf')
        r = run_convert(path, out, '--config', fixture('tiny', 'config.json'))
        self.assertEqual(r.returncode, 0, r.stderr)
        g = Gguf(out)
        self.assertEqual(g.kv['imagebind.modalities'], ['vision', 'text', 'audio', 'thermal'])
        self.assertNotIn('imagebind.imu.embed_dim', g.kv)
        self.assertNotIn('imagebind.depth.kernel_size', g.kv)
        self.assertNotIn('imu', r.stdout)
        self.assertFalse(any('.imu.' in n or '.depth.' in n for n in g.tensors))
        expected = [n for n in self.ref.tensors if '.imu.' not in n and '.depth.' not in n]
        self.assertEqual(list(g.tensors), expected)
        for n in expected:
            self.assertEqual(g.values(n), self.ref.values(n))

    def test_modalities_option(self):
        out = os.path.join(self.tmp.name, 'vt.gguf')
        r = run_convert(fixture('tiny', 'imagebind_tiny.pth'), out,
                        '--config', fixture('tiny', 'config.json'), '--modalities', 'text,vision')
        self.assertEqual(r.returncode, 0, r.stderr)
        g = Gguf(out)
        self.assertEqual(g.kv['imagebind.modalities'], ['vision', 'text'])
        self.assertEqual(len(g.tensors), 3 + 2 + 2 * 12 + 3 + 2 + 2 * 12 + 3 + 1)

    def test_views_offsets_strides_half(self):
        def transform(name, vals, size):
            if name.endswith('mlp.fc1.weight'):
                # stored transposed: storage holds W^T contiguous, the view has stride (1, rows)
                rows, cols = size
                t = [vals[r * cols + c] for c in range(cols) for r in range(rows)]
                return ('FloatStorage', struct.pack('<%df' % len(t), *t), 0, (1, rows))
            if name.endswith('norm_2.bias') or name.endswith('log_logit_scale'):
                # placed after 7 junk elements of a larger storage
                junk = [1e30] * 7
                return ('FloatStorage', struct.pack('<%df' % (len(vals) + 10),
                                                    *(junk + list(vals) + [2e30] * 3)),
                        7, contiguous_stride(size))
            if name.endswith('pos_embed') and 'audio' in name:
                # every other element of a storage twice as large (stride 2 on the last axis)
                inter = []
                for v in vals:
                    inter += [v, -9.0]
                st = contiguous_stride(size)
                return ('FloatStorage', struct.pack('<%df' % len(inter), *inter), 0,
                        tuple(2 * s for s in st))
            if name.endswith('mlp.fc2.weight'):
                return ('HalfStorage', struct.pack('<%de' % len(vals), *vals), 0,
                        contiguous_stride(size))
            return None

        path = self.rebuild(transform=transform)
        for dtype in ('f32', 'f16'):
            out = os.path.join(self.tmp.name, 'views-%s.gguf' % dtype)
            r = run_convert(path, out, '--config', fixture('tiny', 'config.json'),
                            '--dtype', dtype)
            self.assertEqual(r.returncode, 0, r.stderr)
            g = Gguf(out)
            checked = 0
            for n in self.ref.tensors:
                want = self.ref.values(n)
                if n.endswith('mlp.fc2.weight') or (dtype == 'f16' and g.tensors[n][1] == 1):
                    # went through half precision (in the file or in the checkpoint)
                    want = struct.unpack('<%de' % len(want), struct.pack('<%de' % len(want),
                                                                         *want))
                with self.subTest(tensor=n, dtype=dtype):
                    self.assertEqual(g.values(n), want)
                    checked += 1
            self.assertEqual(checked, 210)

    def rebuilt(self, wrap):
        entries, storages = collections.OrderedDict(), {}
        for i, (name, (pid, offset, size, stride)) in enumerate(self.tiny.entries.items()):
            key = 's%d' % i
            vals = self.tiny.floats(name)
            storages[key] = struct.pack('<%df' % len(vals), *vals)
            entries['module.' + name] = FakeTensor(key, 'FloatStorage', len(vals), 0, size,
                                                   contiguous_stride(size))
        path = os.path.join(self.tmp.name, 'wrapped.pth')
        write_pth(path, wrap(entries), storages)
        return path

    def test_module_prefix_and_state_dict_wrapper(self):
        for what, wrap in (('module.', lambda e: e),
                           ('training checkpoint', lambda e: collections.OrderedDict(
                               [('epoch', 3), ('name', 'run'), ('state_dict', e),
                                ('optimizer', {'param_groups': [{'lr': 0.1}]})]))):
            with self.subTest(what):
                out = os.path.join(self.tmp.name, 'wrapped.gguf')
                status, stdout, stderr = convert_here(self.rebuilt(wrap), out, '--config',
                                                      fixture('tiny', 'config.json'))
                self.assertEqual(status, 0, stderr)
                g = Gguf(out)
                self.assertEqual(list(g.tensors), list(self.ref.tensors))
                for n in self.ref.tensors:
                    self.assertEqual(g.values(n), self.ref.values(n), n)

    def test_torchscript_refused(self):
        path = os.path.join(self.tmp.name, 'ViT-B-32.pt')
        make_torchscript_like(path)
        r = run_convert(path, os.path.join(self.tmp.name, 'o.gguf'), '--preset', 'ViT-B-32')
        self.assertEqual(r.returncode, 1)
        for frag in ('is a TorchScript archive', 'timm/vit_base_patch32_clip_224.openai',
                     '--preset ViT-B-32-quickgelu', 'openai/clip-vit-base-patch32'):
            self.assertIn(frag, r.stderr)
        self.assertNotIn('Traceback', r.stderr)


# -- OpenCLIP / Hugging Face CLIP --

def openclip_fixture(*parts):
    return fixture('openclip', 'tiny', *parts)


BPE = None if CONF is None else fixture('preprocess', 'bpe_simple_vocab_16e6.txt.gz')
OPENCLIP_FILES = {   # kind -> (weights, config), the three views of the tiny OpenCLIP model
    'bin': ('open_clip_pytorch_model.bin', 'open_clip_config.json'),
    'safetensors': ('open_clip_model.safetensors', 'open_clip_config.json'),
    'hf': ('hf_model.safetensors', 'hf_config.json'),
}


def convert_openclip_tiny(out_dir, kind='safetensors', dtype='f32', name='openclip-tiny'):
    """Converts one of the tiny OpenCLIP model's files (kind: bin, safetensors, hf) into
    out_dir/openclip-tiny-<kind>-<dtype>.gguf and returns its path; for other tests to reuse
    (the meson targets openclip-tiny-gguf-* in tests/meson.build do the same at build time)."""
    weights, config = OPENCLIP_FILES[kind]
    out = os.path.join(out_dir, 'openclip-tiny-%s-%s.gguf' % (kind, dtype))
    r = run_convert(openclip_fixture(weights), out, '--config', openclip_fixture(config),
                    '--bpe', BPE, '--dtype', dtype, '--name', name)
    if r.returncode != 0:
        raise AssertionError('conversion of %s failed:\n%s' % (weights, r.stderr))
    return out


# OpenCLIP name -> ImageBind name the converter stores it under (GGUF.md), for the index check
def openclip_target(name):
    fixed = {
        'visual.class_embedding': 'modality_preprocessors.vision.cls_token',
        'visual.conv1.weight': 'modality_preprocessors.vision.rgbt_stem.proj.1.weight',
        'visual.positional_embedding':
            'modality_preprocessors.vision.pos_embedding_helper.pos_embed',
        'visual.ln_pre.weight': 'modality_trunks.vision.pre_transformer_layer.0.weight',
        'visual.ln_pre.bias': 'modality_trunks.vision.pre_transformer_layer.0.bias',
        'visual.ln_post.weight': 'modality_heads.vision.0.weight',
        'visual.ln_post.bias': 'modality_heads.vision.0.bias',
        'visual.proj': 'modality_heads.vision.2.weight',
        'positional_embedding': 'modality_preprocessors.text.pos_embed',
        'token_embedding.weight': 'modality_preprocessors.text.token_embedding.weight',
        'ln_final.weight': 'modality_heads.text.proj.0.weight',
        'ln_final.bias': 'modality_heads.text.proj.0.bias',
        'text_projection': 'modality_heads.text.proj.1.weight',
        'logit_scale': 'modality_postprocessors.text.1.log_logit_scale',
    }
    if name in fixed:
        return fixed[name]
    for prefix, m in (('visual.transformer.resblocks.', 'vision'),
                      ('transformer.resblocks.', 'text')):
        if name.startswith(prefix):
            i, rest = name[len(prefix):].split('.', 1)
            module, leaf = rest.rsplit('.', 1)
            module = {'ln_1': 'norm_1', 'ln_2': 'norm_2', 'mlp.c_fc': 'mlp.fc1',
                      'mlp.c_proj': 'mlp.fc2'}.get(module, module)
            return 'modality_trunks.%s.blocks.%s.%s.%s' % (m, i, module, leaf)
    raise KeyError(name)


@unittest.skipIf(CONF is None or not os.path.isdir(os.path.join(CONF or '', 'openclip')),
                 'OpenCLIP conformance fixtures absent')
class ConvertOpenClip(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.index = read_json(openclip_fixture('state_dict_index.json'))['tensors']
        cls.files = {kind: Gguf(convert_openclip_tiny(cls.tmp.name, kind))
                     for kind in OPENCLIP_FILES}
        cls.f16 = Gguf(convert_openclip_tiny(cls.tmp.name, 'bin', 'f16'))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_three_files_same_model(self):
        ref = self.files['bin']
        self.assertEqual(len(ref.tensors), 62)
        for kind, g in self.files.items():
            with self.subTest(kind=kind):
                self.assertEqual(list(g.tensors), list(ref.tensors))
                for name, (ne, ttype, off) in ref.tensors.items():
                    self.assertEqual(g.tensors[name][:2], (ne, ttype), name)
                    self.assertEqual(g.values(name), ref.values(name), name)
                kv = dict(g.kv)
                want = dict(ref.kv)
                for k in ('imagebind.source_family', 'tokenizer.clip.special_tokens'):
                    kv.pop(k)
                    want.pop(k)
                self.assertEqual(kv, want)
        self.assertEqual(self.files['bin'].kv['imagebind.source_family'], 'openclip')
        self.assertEqual(self.files['safetensors'].kv['imagebind.source_family'], 'openclip')
        self.assertEqual(self.files['hf'].kv['imagebind.source_family'], 'hf-clip')
        self.assertEqual(self.files['bin'].kv['tokenizer.clip.special_tokens'], 'openclip')
        self.assertEqual(self.files['hf'].kv['tokenizer.clip.special_tokens'], 'openclip')

    def test_special_tokens_option(self):
        # transformers' tokenizer rule on request; refused for an ImageBind checkpoint
        out = os.path.join(self.tmp.name, 'hf-openai.gguf')
        weights, config = OPENCLIP_FILES['hf']
        status, _, err = convert_here(openclip_fixture(weights), out, '--config',
                                      openclip_fixture(config), '--special-tokens', 'openai')
        self.assertEqual(status, 0, err)
        self.assertEqual(Gguf(out).kv['tokenizer.clip.special_tokens'], 'openai')

    def test_tensors_against_index(self):
        g = self.files['safetensors']
        self.assertEqual(len(self.index), 62)
        for t in self.index:
            target = openclip_target(t['name'])
            with self.subTest(tensor=t['name']):
                vals = g.values(target)
                self.assertEqual(len(vals), t['numel'])
                shape = tuple(t['shape'])
                ne = g.tensors[target][0]
                if t['name'] in ('visual.proj', 'text_projection'):
                    # stored (E, D) = transposed: the index's first values are row 0 of (D, E),
                    # column 0 of the stored matrix
                    self.assertEqual(torch_shape(ne, 2), (shape[1], shape[0]))
                    first = [vals[e * shape[0]] for e in range(len(t['first']))]
                else:
                    self.assertEqual(math.prod(ne), max(1, math.prod(shape)))
                    first = vals[:len(t['first'])]
                self.assertEqual(list(first), [f32(v) for v in t['first']])
                self.assertAlmostEqual(math.fsum(vals), t['sum'],
                                       delta=1e-9 * math.fsum(map(abs, vals)) + 1e-12)

    def test_shapes(self):
        g = self.files['hf']
        self.assertEqual(g.tensors['modality_preprocessors.vision.rgbt_stem.proj.1.weight'][0],
                         (32, 32, 3, 64))
        self.assertEqual(g.tensors['modality_preprocessors.vision.cls_token'][0], (64, 1, 1))
        pos = 'modality_preprocessors.vision.pos_embedding_helper.pos_embed'
        self.assertEqual(g.tensors[pos][0], (64, 50, 1))
        self.assertEqual(g.tensors['modality_preprocessors.text.pos_embed'][0], (32, 77, 1))
        self.assertEqual(g.tensors['modality_trunks.vision.blocks.1.attn.in_proj_weight'][0],
                         (64, 192))
        self.assertEqual(g.tensors['modality_heads.vision.2.weight'][0], (64, 32))
        self.assertEqual(g.tensors['modality_postprocessors.text.1.log_logit_scale'][0], (1,))
        self.assertNotIn('modality_preprocessors.text.mask', g.tensors)

    def test_keys(self):
        kv = self.files['bin'].kv
        self.assertEqual(kv['general.architecture'], 'imagebind')
        self.assertEqual(kv['general.name'], 'openclip-tiny')
        self.assertEqual(kv['imagebind.modalities'], ['vision', 'text'])
        self.assertEqual(kv['imagebind.out_embed_dim'], 32)
        expect = {'vision': (64, 2, 2), 'text': (32, 2, 2)}
        for m, (d, blocks, heads) in expect.items():
            self.assertEqual(kv['imagebind.%s.embed_dim' % m], d)
            self.assertEqual(kv['imagebind.%s.num_blocks' % m], blocks)
            self.assertEqual(kv['imagebind.%s.num_heads' % m], heads)
            self.assertEqual(kv['imagebind.%s.activation' % m], 'gelu')
            self.assertEqual(kv['imagebind.%s.layer_norm_eps' % m], f32(1e-5))
            self.assertEqual(kv_type(self.files['bin'], 'imagebind.%s.layer_norm_eps' % m), 6)
        self.assertEqual(kv['imagebind.vision.kernel_size'], [1, 32, 32])
        self.assertEqual(kv['imagebind.vision.video_frames'], 1)
        self.assertEqual(kv['imagebind.vision.image_size'], 224)
        self.assertEqual(kv['imagebind.vision.image_mean'],
                         [f32(v) for v in (0.48145466, 0.4578275, 0.40821073)])
        self.assertEqual(kv['imagebind.vision.image_std'],
                         [f32(v) for v in (0.26862954, 0.26130258, 0.27577711)])
        self.assertEqual(kv['imagebind.text.context_length'], 77)
        self.assertEqual(kv['imagebind.text.vocab_size'], 49408)
        self.assertEqual(kv['tokenizer.ggml.model'], 'clip-bpe')
        self.assertEqual(len(kv['tokenizer.ggml.merges']), 48894)
        for m in ('audio', 'depth', 'thermal', 'imu'):
            self.assertFalse(any(k.startswith('imagebind.%s.' % m) for k in kv), m)

    def test_f16_policy(self):
        types_ = {n: tt for n, (ne, tt, off) in self.f16.tensors.items()}
        for n in ('modality_preprocessors.text.token_embedding.weight',
                  'modality_preprocessors.vision.rgbt_stem.proj.1.weight',
                  'modality_trunks.vision.blocks.0.mlp.fc2.weight',
                  'modality_heads.vision.2.weight', 'modality_heads.text.proj.1.weight'):
            self.assertEqual(types_[n], 1, n)
        for n in ('modality_preprocessors.vision.cls_token',
                  'modality_preprocessors.vision.pos_embedding_helper.pos_embed',
                  'modality_trunks.text.blocks.1.attn.in_proj_weight',
                  'modality_trunks.vision.pre_transformer_layer.0.weight',
                  'modality_postprocessors.text.1.log_logit_scale'):
            self.assertEqual(types_[n], 0, n)
        name = 'modality_heads.text.proj.1.weight'
        want = self.files['bin'].values(name)
        self.assertEqual(self.f16.values(name),
                         struct.unpack('<%de' % len(want), struct.pack('<%de' % len(want), *want)))


# -- safetensors files written here --

ST_SIZES = {'F32': 4, 'F16': 2, 'BF16': 2, 'I64': 8, 'F64': 8, 'I32': 4}


def safetensors_bytes(tensors, metadata=None, header=None):
    """A safetensors file: tensors = [(name, dtype, shape, data bytes)], laid out in order.
    `header` replaces the JSON header text (for hostile files)."""
    doc = collections.OrderedDict()
    if metadata is not None:
        doc['__metadata__'] = metadata
    pos, blobs = 0, []
    for name, dtype, shape, data in tensors:
        doc[name] = {'dtype': dtype, 'shape': list(shape), 'data_offsets': [pos, pos + len(data)]}
        pos += len(data)
        blobs.append(data)
    text = (header if header is not None else json.dumps(doc)).encode('utf-8')
    text += b' ' * ((-len(text)) % 8)
    return struct.pack('<Q', len(text)) + text + b''.join(blobs)


def read_safetensors_raw(path):
    """(header dict, {name: raw bytes}) of a safetensors file, read plainly."""
    with open(path, 'rb') as f:
        buf = f.read()
    (n,) = struct.unpack_from('<Q', buf)
    header = json.loads(buf[8:8 + n], object_pairs_hook=collections.OrderedDict)
    data = {k: buf[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]]
            for k, v in header.items() if k != '__metadata__'}
    return header, data


def rewrite_safetensors(src, dst, rename=lambda n: n, drop=(), extra=()):
    """src's tensors under new names, some dropped, `extra` (name, dtype, shape, bytes) added."""
    header, data = read_safetensors_raw(src)
    tensors = [(rename(k), v['dtype'], v['shape'], data[k]) for k, v in header.items()
               if k != '__metadata__' and k not in drop]
    with open(dst, 'wb') as f:
        f.write(safetensors_bytes(tensors + list(extra), header.get('__metadata__')))


SMALL_TENSORS = [('a', 'F32', (2, 3), struct.pack('<6f', 1, 2, 3, 4, 5, 6)),
                 ('b', 'F16', (4,), struct.pack('<4e', 0.5, -1, 2, 65504)),
                 ('c', 'I64', (1, 2), struct.pack('<2q', 7, -8)),
                 ('d', 'BF16', (), b'\x80\x3f'),
                 ('z', 'F32', (0, 5), b'')]


class SafetensorsReader(unittest.TestCase):
    """The converter's safetensors reader on valid and hostile files (in process: every
    refusal must be a CheckpointError, anything else would reach the user as a traceback)."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.valid = safetensors_bytes(SMALL_TENSORS, {'format': 'pt'})

    def path(self, data, name='x.safetensors'):
        p = os.path.join(self.tmp.name, name)
        with open(p, 'wb') as f:
            f.write(data)
        return p

    def refused(self, data, *fragments):
        with self.assertRaises(ckpt_module.CheckpointError) as cm:
            SafetensorsFile(self.path(data)).close()
        for frag in fragments:
            self.assertIn(frag, str(cm.exception))
        return str(cm.exception)

    def hostile(self, header_text, *fragments, data=b''):
        text = header_text.encode('utf-8')
        return self.refused(struct.pack('<Q', len(text)) + text + data, *fragments)

    def test_valid(self):
        f = SafetensorsFile(self.path(self.valid))
        self.addCleanup(f.close)
        self.assertEqual(f.metadata, {'format': 'pt'})
        self.assertEqual(list(f.tensors), ['a', 'b', 'c', 'd', 'z'])
        for name, dtype, shape, data in SMALL_TENSORS:
            t = f.tensors[name]
            self.assertEqual((t.dtype, t.shape, t.numel), (dtype, shape, math.prod(shape)))
            self.assertEqual(b''.join(f.iter_raw(t)), data)
        # chunks of whole elements, here 8 bytes = 2 floats
        self.assertEqual(list(f.iter_raw(f.tensors['a'], chunk_bytes=9)),
                         [struct.pack('<2f', 1, 2), struct.pack('<2f', 3, 4),
                          struct.pack('<2f', 5, 6)])

    def test_unaligned_data(self):
        # a 1-element F16 first: every later tensor starts at an odd multiple of 2
        tensors = [('h', 'F16', (1,), struct.pack('<e', 1.5))] + SMALL_TENSORS[:1]
        f = SafetensorsFile(self.path(safetensors_bytes(tensors)))
        self.addCleanup(f.close)
        self.assertEqual(f.tensors['a'].start % 4, 2)
        self.assertEqual(b''.join(f.iter_raw(f.tensors['a'])), SMALL_TENSORS[0][3])

    def test_every_truncation(self):
        for n in range(len(self.valid)):
            with self.subTest(length=n):
                self.refused(self.valid[:n])

    def test_bad_json(self):
        for text, frag in (('not json', 'not valid JSON'), ('{"a": }', 'not valid JSON'),
                           ('{"a": {"dtype": "F32", "shape": [NaN], "data_offsets": [0, 4]}}',
                            'not valid JSON'),
                           ('{"a": 1, "a": 2}', 'duplicate key'),
                           ('[1, 2]', 'not an object'), ('{} x', 'not valid JSON'),
                           ('"\\ud800"', 'not an object'), ('{"\x01": 1}', 'not valid JSON')):
            with self.subTest(header=text):
                self.hostile(text, frag)
        self.refused(struct.pack('<Q', 2) + b'\xff\xfe', 'not valid JSON')

    def test_header_length(self):
        for n in (len(self.valid), 1 << 40, (1 << 64) - 1):
            with self.subTest(n=n):
                self.refused(struct.pack('<Q', n) + self.valid[8:], 'header length')
        self.refused(struct.pack('<Q', 200 * 1000 * 1000) + b'{}', 'limit')

    def test_offsets(self):
        def one(offsets, data=b'\0' * 8, name='t'):
            return json.dumps({name: {'dtype': 'F32', 'shape': [2], 'data_offsets': offsets}})
        self.hostile(one([0, 16]), 'outside the data section', data=b'\0' * 8)
        self.hostile(one([8, 0]), 'outside the data section', data=b'\0' * 8)
        self.hostile(one([-8, 0]), 'outside the data section', data=b'\0' * 8)
        self.hostile(one([0, 8.0]), 'two integers', data=b'\0' * 8)
        self.hostile(one([0]), 'two integers', data=b'\0' * 8)
        self.hostile(one([0, True]), 'two integers', data=b'\0' * 8)
        overlap = json.dumps({
            'p': {'dtype': 'F32', 'shape': [2], 'data_offsets': [0, 8]},
            'q': {'dtype': 'F32', 'shape': [2], 'data_offsets': [4, 12]}})
        self.hostile(overlap, 'overlap', data=b'\0' * 12)
        same = json.dumps({
            'p': {'dtype': 'F32', 'shape': [2], 'data_offsets': [0, 8]},
            'q': {'dtype': 'F16', 'shape': [4], 'data_offsets': [0, 8]}})
        self.hostile(same, 'overlap', data=b'\0' * 8)
        self.hostile(one([4, 12]), 'belong to no tensor', data=b'\0' * 12)    # a hole
        self.hostile(one([0, 8]), 'after the last tensor', data=b'\0' * 12)   # trailing

    def test_dtypes(self):
        for dtype in ('F64', 'I32', 'BOOL', 'U8', 'F8_E4M3', 'f32', '', 7, None):
            with self.subTest(dtype=dtype):
                self.hostile(json.dumps({'t': {'dtype': dtype, 'shape': [1],
                                               'data_offsets': [0, 8]}}),
                             'is not supported', data=b'\0' * 8)

    def test_shapes(self):
        for shape, frag in (([3], 'needs 12 bytes, data_offsets give 8'),
                            ([1, 1], 'needs 4 bytes'), ([], 'needs 4 bytes'),
                            ([2 ** 62, 2 ** 62], 'absurd shape'), ([1] * 9, 'absurd shape'),
                            ([-2], 'absurd shape'), ([2.0], 'absurd shape'),
                            ([True, 2], 'absurd shape'), ('2', 'absurd shape'),
                            ([0, 2 ** 41], 'absurd shape')):
            with self.subTest(shape=shape):
                self.hostile(json.dumps({'t': {'dtype': 'F32', 'shape': shape,
                                               'data_offsets': [0, 8]}}),
                             frag, data=b'\0' * 8)

    def test_entries(self):
        self.hostile('{"t": [1, 2]}', 'expected an object')
        self.hostile('{"t": {"dtype": "F32", "shape": [0]}}', 'expected an object')
        self.hostile('{"t": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0], "x": 1}}',
                     'expected an object')
        self.hostile('{"__metadata__": {"format": 1}}', '__metadata__')
        self.hostile('{"__metadata__": [1]}', '__metadata__')

    def test_cli_refuses_without_traceback(self):
        bad = self.path(self.valid[:len(self.valid) - 3], 'cut.safetensors')
        r = run_convert(bad, os.path.join(self.tmp.name, 'o.gguf'), '--preset', 'ViT-B-32')
        self.assertEqual(r.returncode, 1)
        self.assertIn('convert.py: error: %s: tensor' % bad, r.stderr)
        self.assertIn('outside the data section', r.stderr)
        self.assertNotIn('Traceback', r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp.name, 'o.gguf')))


@unittest.skipIf(CONF is None or not os.path.isdir(os.path.join(CONF or '', 'openclip')),
                 'OpenCLIP conformance fixtures absent')
class ConvertOpenClipVariants(unittest.TestCase):
    """The tiny OpenCLIP model rewritten (prefixes, position_ids, missing tensors), other
    configurations, and the checkpoints of other families."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.ref = Gguf(convert_openclip_tiny(cls.tmp.name, 'safetensors', name='t'))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def assert_same_tensors(self, g):
        self.assertEqual(list(g.tensors), list(self.ref.tensors))
        for name in self.ref.tensors:
            self.assertEqual(g.tensors[name][:2], self.ref.tensors[name][:2], name)
            self.assertEqual(g.values(name), self.ref.values(name), name)

    def convert_ok(self, ckpt, config, name='v.gguf', *more):
        out = self.path(name)
        status, stdout, stderr = convert_here(ckpt, out, '--config', config, '--name', 't',
                                              *more)
        self.assertEqual(status, 0, stderr)
        return Gguf(out)

    def refused(self, ckpt, *args, fragments=()):
        out = self.path('refused.gguf')
        status, stdout, stderr = convert_here(ckpt, out, *args)
        self.assertEqual(status, 1 if args else 2, stderr)
        for frag in fragments:
            self.assertIn(frag, stderr)
        self.assertFalse(os.path.exists(out))
        return stderr

    def test_hf_with_int64_position_ids(self):
        hf = self.path('hf-pos.safetensors')
        rewrite_safetensors(openclip_fixture('hf_model.safetensors'), hf, extra=[
            ('text_model.embeddings.position_ids', 'I64', (1, 77),
             struct.pack('<77q', *range(77))),
            ('vision_model.embeddings.position_ids', 'I64', (1, 50),
             struct.pack('<50q', *range(50)))])
        f = SafetensorsFile(hf)
        self.addCleanup(f.close)
        self.assertEqual(f.tensors['text_model.embeddings.position_ids'].dtype, 'I64')
        g = self.convert_ok(hf, openclip_fixture('hf_config.json'))
        self.assert_same_tensors(g)
        self.assertEqual(g.kv['imagebind.source_family'], 'hf-clip')

    def test_hf_pytorch_model_bin(self):
        # transformers' pytorch_model.bin: a torch zip with the same names, int64 position_ids
        header, data = read_safetensors_raw(openclip_fixture('hf_model.safetensors'))
        entries, storages = collections.OrderedDict(), {}
        for i, (k, v) in enumerate((k, v) for k, v in header.items() if k != '__metadata__'):
            storages[str(i)] = data[k]
            entries[k] = FakeTensor(str(i), 'FloatStorage', len(data[k]) // 4, 0, v['shape'],
                                    contiguous_stride(v['shape']))
        storages['pos'] = struct.pack('<77q', *range(77))
        entries['text_model.embeddings.position_ids'] = FakeTensor(
            'pos', 'LongStorage', 77, 0, (1, 77), (77, 1))
        path = self.path('pytorch_model.bin')
        write_pth(path, entries, storages, prefix='pytorch_model')
        g = self.convert_ok(path, openclip_fixture('hf_config.json'))
        self.assert_same_tensors(g)
        self.assertEqual(g.kv['imagebind.source_family'], 'hf-clip')

    def test_module_prefix(self):
        st = self.path('module.safetensors')
        rewrite_safetensors(openclip_fixture('open_clip_model.safetensors'), st,
                            rename=lambda n: 'module.' + n)
        self.assert_same_tensors(self.convert_ok(st, openclip_fixture('open_clip_config.json')))

    def test_custom_text_prefix(self):
        # OpenCLIP's CustomTextCLIP keeps the text tower under "text."
        text_names = ('token_embedding.', 'positional_embedding', 'transformer.', 'ln_final.',
                      'text_projection')
        st = self.path('customtext.safetensors')
        rewrite_safetensors(openclip_fixture('open_clip_model.safetensors'), st,
                            rename=lambda n: 'text.' + n if n.startswith(text_names) else n)
        self.assert_same_tensors(self.convert_ok(st, openclip_fixture('open_clip_config.json')))

    def test_bf16_and_f16_sources(self):
        # the same numbers stored as F16 (exact for these values after rounding) in the file
        header, data = read_safetensors_raw(openclip_fixture('open_clip_model.safetensors'))
        tensors = []
        for k, v in header.items():
            if k == '__metadata__':
                continue
            n = math.prod(v['shape'])
            vals = struct.unpack('<%df' % n, data[k])
            tensors.append((k, 'F16', v['shape'], struct.pack('<%de' % n, *vals)))
        st = self.path('half.safetensors')
        with open(st, 'wb') as f:
            f.write(safetensors_bytes(tensors))
        g = self.convert_ok(st, openclip_fixture('open_clip_config.json'))
        for name in self.ref.tensors:
            want = self.ref.values(name)
            want = struct.unpack('<%de' % len(want), struct.pack('<%de' % len(want), *want))
            self.assertEqual(g.values(name), want, name)

    def test_hf_merges_txt(self):
        with gzip.open(BPE, 'rt', encoding='utf-8') as f:
            lines = f.read().split('\n')
        merges = self.path('merges.txt')
        with open(merges, 'w', encoding='utf-8') as f:
            f.write('#version: 0.2\n' + '\n'.join(lines[1:48895]) + '\n')
        g = self.convert_ok(openclip_fixture('hf_model.safetensors'),
                            openclip_fixture('hf_config.json'), 'merges.gguf', '--bpe', merges)
        self.assertEqual(g.kv['tokenizer.ggml.merges'], lines[1:48895])

    def test_quick_gelu_and_eps(self):
        cfg = read_json(openclip_fixture('open_clip_config.json'))
        cfg['model_cfg']['quick_gelu'] = True
        cfg['preprocess_cfg']['mean'] = [0.5, 0.5, 0.5]
        path = self.path('quick.json')
        write_json(path, cfg)
        g = self.convert_ok(openclip_fixture('open_clip_model.safetensors'), path)
        self.assertEqual(g.kv['imagebind.vision.activation'], 'quick_gelu')
        self.assertEqual(g.kv['imagebind.text.activation'], 'quick_gelu')
        self.assertEqual(g.kv['imagebind.vision.image_mean'], [0.5, 0.5, 0.5])
        hf = read_json(openclip_fixture('hf_config.json'))
        hf['text_config']['hidden_act'] = 'quick_gelu'
        hf['vision_config']['layer_norm_eps'] = 1e-6
        path = self.path('hf-quick.json')
        write_json(path, hf)
        g = self.convert_ok(openclip_fixture('hf_model.safetensors'), path)
        self.assertEqual(g.kv['imagebind.text.activation'], 'quick_gelu')
        self.assertEqual(g.kv['imagebind.vision.activation'], 'gelu')
        self.assertEqual(g.kv['imagebind.vision.layer_norm_eps'], f32(1e-6))
        self.assertEqual(g.kv['imagebind.text.layer_norm_eps'], f32(1e-5))
        # a HF config.json that leaves out what equals transformers' defaults (quick_gelu)
        hf = read_json(openclip_fixture('hf_config.json'))
        for sub in ('text_config', 'vision_config'):
            del hf[sub]['hidden_act']
        write_json(path, hf)
        g = self.convert_ok(openclip_fixture('hf_model.safetensors'), path)
        self.assertEqual(g.kv['imagebind.vision.activation'], 'quick_gelu')

    def test_config_mismatches_listed(self):
        err = self.refused(openclip_fixture('open_clip_model.safetensors'), '--preset',
                           'ViT-B-32', fragments=(
                               'does not match preset ViT-B-32',
                               'embed_dim (projection width): config 512, checkpoint 32',
                               'vision width: config 768, checkpoint 64',
                               'vision layers: config 12, checkpoint 2',
                               'text width: config 512, checkpoint 32',
                               'text layers: config 12, checkpoint 2'))
        self.assertNotIn('Traceback', err)
        cfg = read_json(openclip_fixture('open_clip_config.json'))
        cfg['model_cfg']['vision_cfg']['patch_size'] = 16
        cfg['model_cfg']['text_cfg']['layers'] = 3
        cfg['model_cfg']['text_cfg']['heads'] = 3
        path = self.path('bad.json')
        write_json(path, cfg)
        self.refused(openclip_fixture('open_clip_pytorch_model.bin'), '--config', path,
                     fragments=('vision patch_size: config 16, checkpoint 32',
                                'vision image_size 224 / patch_size 16 gives a 14x14 grid, the '
                                'positional table holds 7x7',
                                'text layers: config 3, checkpoint 2',
                                'text heads 3 do not divide the width 32'))
        hf = read_json(openclip_fixture('hf_config.json'))
        hf['projection_dim'] = 64
        hf['vision_config']['intermediate_size'] = 512
        write_json(path, hf)
        self.refused(openclip_fixture('hf_model.safetensors'), '--config', path,
                     fragments=('embed_dim (projection width): config 64, checkpoint 32',
                                'vision MLP width: config 512, checkpoint 256'))

    def test_unsupported_options_listed(self):
        cfg = read_json(openclip_fixture('open_clip_config.json'))
        cfg['model_cfg']['vision_cfg'].update(attentional_pool=True, mlp_ratio=4.9)
        cfg['model_cfg']['text_cfg'].update(pool_type='last', proj_bias=True, novel=1)
        cfg['model_cfg']['init_logit_bias'] = -10
        path = self.path('opts.json')
        write_json(path, cfg)
        self.refused(openclip_fixture('open_clip_model.safetensors'), '--config', path,
                     fragments=('vision_cfg.attentional_pool = True is not supported',
                                'vision_cfg.mlp_ratio 4.9 is not supported',
                                "text_cfg.pool_type = 'last' is not supported",
                                'text_cfg.proj_bias = True', 'text_cfg.novel: unknown option',
                                'init_logit_bias = -10'))
        hf = read_json(openclip_fixture('hf_config.json'))
        hf['text_config']['hidden_act'] = 'gelu_new'
        write_json(path, hf)
        self.refused(openclip_fixture('hf_model.safetensors'), '--config', path,
                     fragments=("text_config.hidden_act 'gelu_new' is not supported",))
        hf['model_type'] = 'siglip'
        write_json(path, hf)
        self.refused(openclip_fixture('hf_model.safetensors'), '--config', path,
                     fragments=("model_type 'siglip' (SigLIP: out of scope)",))

    def test_wrong_kind_of_config(self):
        self.refused(openclip_fixture('hf_model.safetensors'), '--config',
                     fixture('tiny', 'config.json'), fragments=('is an ImageBind configuration',))
        self.refused(openclip_fixture('hf_model.safetensors'), '--preset', 'huge',
                     fragments=("--preset huge is ImageBind's",))
        self.refused(fixture('tiny', 'imagebind_tiny.pth'), '--preset', 'ViT-B-32',
                     fragments=('is an OpenCLIP model',))
        self.refused(fixture('tiny', 'imagebind_tiny.pth'), '--config',
                     openclip_fixture('open_clip_config.json'),
                     fragments=('is a OpenCLIP configuration, but',))
        timm = self.path('timm.json')
        write_json(timm, {'architecture': 'vit_base_patch32_clip_224', 'num_classes': 512})
        self.refused(openclip_fixture('hf_model.safetensors'), '--config', timm,
                     fragments=('is neither an OpenCLIP config',))

    def test_missing_and_unexpected_tensors(self):
        hf = self.path('hf-missing.safetensors')
        rewrite_safetensors(openclip_fixture('hf_model.safetensors'), hf,
                            drop=('text_model.encoder.layers.1.self_attn.k_proj.weight',),
                            extra=[('vision_model.extra_head.weight', 'F32', (2,), b'\0' * 8),
                                   ('text_model.encoder.layers.0.mlp.fc1.bias', 'F32', (3,),
                                    b'\0' * 12)][:1])
        self.refused(hf, '--config', openclip_fixture('hf_config.json'), fragments=(
            'missing tensors (1):', 'text_model.encoder.layers.1.self_attn.k_proj.weight',
            'unexpected tensors (1):', 'vision_model.extra_head.weight (2,)'))
        st = self.path('oc-shape.safetensors')
        rewrite_safetensors(openclip_fixture('open_clip_model.safetensors'), st,
                            drop=('visual.ln_pre.bias',),
                            extra=[('visual.ln_pre.bias', 'F32', (3,), b'\0' * 12),
                                   ('visual.proj.extra', 'I64', (1,), b'\0' * 8)])
        self.refused(st, '--config', openclip_fixture('open_clip_config.json'), fragments=(
            'shape mismatches (1):', 'visual.ln_pre.bias: checkpoint (3,), expected (64,)',
            'visual.proj.extra (1,)'))
        st = self.path('oc-int.safetensors')
        header, data = read_safetensors_raw(openclip_fixture('open_clip_model.safetensors'))
        rewrite_safetensors(openclip_fixture('open_clip_model.safetensors'), st,
                            drop=('visual.ln_post.bias',),
                            extra=[('visual.ln_post.bias', 'I64', (64,), b'\0' * 512)])
        self.refused(st, '--config', openclip_fixture('open_clip_config.json'), fragments=(
            'not floating point (1):', 'visual.ln_post.bias: I64'))
        st = self.path('oc-notext.safetensors')
        rewrite_safetensors(openclip_fixture('open_clip_model.safetensors'), st,
                            drop=('token_embedding.weight',))
        self.refused(st, '--config', openclip_fixture('open_clip_config.json'), fragments=(
            'without the tensors that give its sizes', 'token_embedding.weight'))

    def test_other_families_refused(self):
        one = ('F32', (1,), b'\0' * 4)
        cases = {
            'SigLIP': ['visual.trunk.patch_embed.proj.weight', 'visual.trunk.attn_pool.q',
                       'logit_bias', 'logit_scale'],
            'SigLIP ': ['vision_model.embeddings.patch_embedding.weight',
                        'vision_model.head.probe', 'text_model.embeddings.token_embedding.weight'],
            'CoCa': ['visual.conv1.weight', 'visual.transformer.resblocks.0.ln_1.weight',
                     'text.token_embedding.weight', 'text_decoder.resblocks.0.ln_1.weight'],
            'ConvNeXt': ['visual.trunk.stem.0.weight', 'visual.trunk.stages.0.blocks.0.w',
                         'token_embedding.weight'],
            'ModifiedResNet': ['visual.conv1.weight', 'visual.layer1.0.conv1.weight',
                               'visual.attnpool.positional_embedding', 'token_embedding.weight'],
            'EVA': ['visual.patch_embed.proj.weight', 'visual.blocks.0.attn.q_proj.weight',
                    'visual.rope.freqs_cos', 'text.token_embedding.weight'],
        }
        for family, names in cases.items():
            with self.subTest(family=family):
                st = self.path('fam.safetensors')
                with open(st, 'wb') as f:
                    f.write(safetensors_bytes([(n,) + one for n in names]))
                self.refused(st, '--preset', 'ViT-B-32', fragments=(
                    'is a %s checkpoint' % family.strip(), 'out of scope'))

    def test_unknown_family(self):
        st = self.path('bert.safetensors')
        names = ['encoder.layer.%d.attention.self.query.weight' % i for i in range(3)]
        names += ['embeddings.word_embeddings.weight', 'pooler.dense.weight']
        with open(st, 'wb') as f:
            f.write(safetensors_bytes([(n, 'F32', (1,), b'\0' * 4) for n in names]))
        self.refused(st, '--preset', 'ViT-B-32', fragments=(
            'is not a checkpoint of a known family',
            'ImageBind, OpenCLIP CLIP ViT or Hugging Face transformers CLIPModel',
            '5 tensors', 'encoder.layer.0.attention.self.query.weight',
            'encoder (3), embeddings (1), pooler (1)'))
        with open(st, 'wb') as f:
            f.write(safetensors_bytes([]))
        self.refused(st, '--preset', 'ViT-B-32', fragments=('holds no tensor',))

    def test_presets(self):
        for name, (d, heads, blocks, t_d, t_heads, t_blocks, patch, e) in {
                'ViT-B-32': (768, 12, 12, 512, 8, 12, 32, 512),
                'ViT-B-16': (768, 12, 12, 512, 8, 12, 16, 512),
                'ViT-L-14': (1024, 16, 24, 768, 12, 12, 14, 768),
                'ViT-H-14': (1280, 16, 32, 1024, 16, 24, 14, 1024)}.items():
            for suffix, act in (('', 'gelu'), ('-quickgelu', 'quick_gelu')):
                cfg = clip_module.load_clip_config(preset=name + suffix)
                got = (cfg.vision.width, cfg.vision.heads, cfg.vision.layers, cfg.text.width,
                       cfg.text.heads, cfg.text.layers, cfg.patch_size, cfg.embed_dim)
                self.assertEqual(got, (d, heads, blocks, t_d, t_heads, t_blocks, patch, e), name)
                self.assertEqual((cfg.vision.activation, cfg.text.activation), (act, act))
                self.assertEqual((cfg.image_size, cfg.context_length, cfg.vocab_size),
                                 (224, 77, 49408))


def synthetic_openclip(seed, dv=48, patch=16, image=224, v_layers=2, dt=40, t_layers=3, ctx=16,
                       vocab=600, e=24):
    """An OpenCLIP state dict of other sizes than tiny's (patch 16 at 224: 197 tokens,
    non-square projections, a context of 16, 3 vision heads of 16, 5 text heads of 8):
    name -> (shape, float values). Scaled like a trained model (matrices ~ 1/sqrt(fan-in),
    LayerNorm weights near 1, logit scale ln 20 .. ln 90) so that the float32 runtime can be
    held to the conformance tolerance against a float64 reference."""
    rng = random.Random(seed)
    nv = (image // patch) ** 2 + 1
    t = collections.OrderedDict()

    def add(name, *shape):
        if name == 'logit_scale':
            lo, hi = math.log(20), math.log(90)
        elif name.endswith('ln_1.weight') or name.endswith('ln_2.weight') or \
                name.startswith('ln_final.weight') or name.startswith('visual.ln_'):
            lo, hi = (0.5, 1.5) if name.endswith('weight') else (-0.2, 0.2)
        elif len(shape) >= 2 and 'embedding' not in name:
            fan_in = math.prod(shape[1:]) if name != 'visual.proj' and \
                name != 'text_projection' else shape[0]
            lo, hi = -(3 / fan_in) ** 0.5, (3 / fan_in) ** 0.5
        elif name.endswith('bias'):
            lo, hi = -0.1, 0.1
        else:
            lo, hi = -1, 1
        t[name] = (shape, [rng.uniform(lo, hi) for _ in range(math.prod(shape))])

    def blocks(prefix, d, layers):
        for i in range(layers):
            b = '%s%d.' % (prefix, i)
            add(b + 'ln_1.weight', d)
            add(b + 'ln_1.bias', d)
            add(b + 'attn.in_proj_weight', 3 * d, d)
            add(b + 'attn.in_proj_bias', 3 * d)
            add(b + 'attn.out_proj.weight', d, d)
            add(b + 'attn.out_proj.bias', d)
            add(b + 'ln_2.weight', d)
            add(b + 'ln_2.bias', d)
            add(b + 'mlp.c_fc.weight', 4 * d, d)
            add(b + 'mlp.c_fc.bias', 4 * d)
            add(b + 'mlp.c_proj.weight', d, 4 * d)
            add(b + 'mlp.c_proj.bias', d)
    add('positional_embedding', ctx, dt)
    add('text_projection', dt, e)
    add('logit_scale')
    add('token_embedding.weight', vocab, dt)
    add('ln_final.weight', dt)
    add('ln_final.bias', dt)
    blocks('transformer.resblocks.', dt, t_layers)
    add('visual.class_embedding', dv)
    add('visual.conv1.weight', dv, 3, patch, patch)
    add('visual.positional_embedding', nv, dv)
    add('visual.ln_pre.weight', dv)
    add('visual.ln_pre.bias', dv)
    blocks('visual.transformer.resblocks.', dv, v_layers)
    add('visual.ln_post.weight', dv)
    add('visual.ln_post.bias', dv)
    add('visual.proj', dv, e)
    config = {'model_cfg': {'embed_dim': e, 'quick_gelu': True,
                            'vision_cfg': {'image_size': image, 'layers': v_layers, 'width': dv,
                                           'head_width': 16, 'patch_size': patch},
                            'text_cfg': {'context_length': ctx, 'vocab_size': vocab,
                                         'width': dt, 'heads': 5, 'layers': t_layers}},
              'preprocess_cfg': {'mean': [0.5, 0.5, 0.5], 'std': [0.25, 0.25, 0.25]}}
    hf_config = {'model_type': 'clip', 'projection_dim': e,
                 'text_config': {'vocab_size': vocab, 'hidden_size': dt,
                                 'intermediate_size': 4 * dt, 'num_hidden_layers': t_layers,
                                 'num_attention_heads': 5, 'max_position_embeddings': ctx},
                 'vision_config': {'hidden_size': dv, 'intermediate_size': 4 * dv,
                                   'num_hidden_layers': v_layers, 'num_attention_heads': 3,
                                   'image_size': image, 'patch_size': patch}}
    return t, config, hf_config     # (transformers' default hidden_act is quick_gelu)


def transpose(shape, vals):
    rows, cols = shape
    return (cols, rows), [vals[r * cols + c] for c in range(cols) for r in range(rows)]


def to_hf(tensors):
    """MAPPING.md's table, written here independently of the converter."""
    out = collections.OrderedDict()
    rename = {'positional_embedding': 'text_model.embeddings.position_embedding.weight',
              'token_embedding.weight': 'text_model.embeddings.token_embedding.weight',
              'ln_final.weight': 'text_model.final_layer_norm.weight',
              'ln_final.bias': 'text_model.final_layer_norm.bias',
              'logit_scale': 'logit_scale',
              'visual.class_embedding': 'vision_model.embeddings.class_embedding',
              'visual.conv1.weight': 'vision_model.embeddings.patch_embedding.weight',
              'visual.positional_embedding': 'vision_model.embeddings.position_embedding.weight',
              'visual.ln_pre.weight': 'vision_model.pre_layrnorm.weight',
              'visual.ln_pre.bias': 'vision_model.pre_layrnorm.bias',
              'visual.ln_post.weight': 'vision_model.post_layernorm.weight',
              'visual.ln_post.bias': 'vision_model.post_layernorm.bias'}
    layer = {'ln_1': 'layer_norm1', 'ln_2': 'layer_norm2', 'mlp.c_fc': 'mlp.fc1',
             'mlp.c_proj': 'mlp.fc2', 'attn.out_proj': 'self_attn.out_proj'}
    for name, (shape, vals) in tensors.items():
        if name in rename:
            out[rename[name]] = (shape, vals)
        elif name == 'text_projection':
            out['text_projection.weight'] = transpose(shape, vals)
        elif name == 'visual.proj':
            out['visual_projection.weight'] = transpose(shape, vals)
        else:
            tower = 'vision_model' if name.startswith('visual.') else 'text_model'
            i, rest = name.split('resblocks.')[1].split('.', 1)
            module, leaf = rest.rsplit('.', 1)
            prefix = '%s.encoder.layers.%s.' % (tower, i)
            if module == 'attn':          # in_proj_weight / in_proj_bias: rows q, k, v
                d = shape[0] // 3
                per = len(vals) // 3
                for j, x in enumerate('qkv'):
                    out[prefix + 'self_attn.%s_proj.%s' % (x, leaf.split('_')[-1])] = (
                        (d,) + tuple(shape[1:]), vals[j * per:(j + 1) * per])
            else:
                out[prefix + layer[module] + '.' + leaf] = (shape, vals)
    return out


SYNTHETIC = 'synthetic-clip-'   # file name prefix of write_synthetic_clip's files


def write_synthetic_clip(d, seed=7):
    """synthetic_openclip(seed) as the three files a user may have, in directory d:
    synthetic-clip-oc.safetensors, -oc.bin (OpenCLIP names), -hf.safetensors (transformers
    names, with the int64 position_ids buffers), and the configs -oc.json, -hf.json. Returns
    the generated tensors. Also run by tests/meson.build (--write-synthetic-clip DIR), whose
    conformance-openclip test runs the converted files through the C runtime against a
    float64 reference."""
    tensors, config, hf_config = synthetic_openclip(seed)
    ctx = tensors['positional_embedding'][0][0]
    nv = tensors['visual.positional_embedding'][0][0]

    def f32s(vals):
        return struct.pack('<%df' % len(vals), *vals)
    with open(os.path.join(d, SYNTHETIC + 'oc.safetensors'), 'wb') as f:
        f.write(safetensors_bytes([(k, 'F32', shape, f32s(v))
                                   for k, (shape, v) in tensors.items()]))
    hf = [(k, 'F32', shape, f32s(v)) for k, (shape, v) in to_hf(tensors).items()]
    hf.append(('text_model.embeddings.position_ids', 'I64', (1, ctx),
               struct.pack('<%dq' % ctx, *range(ctx))))
    hf.append(('vision_model.embeddings.position_ids', 'I64', (1, nv),
               struct.pack('<%dq' % nv, *range(nv))))
    with open(os.path.join(d, SYNTHETIC + 'hf.safetensors'), 'wb') as f:
        f.write(safetensors_bytes(hf, {'format': 'pt'}))
    entries, storages = collections.OrderedDict(), {}
    for i, (k, (shape, v)) in enumerate(tensors.items()):
        storages[str(i)] = f32s(v)
        entries[k] = FakeTensor(str(i), 'FloatStorage', len(v), 0, shape,
                                contiguous_stride(shape))
    write_pth(os.path.join(d, SYNTHETIC + 'oc.bin'), entries, storages, prefix='oc')
    write_json(os.path.join(d, SYNTHETIC + 'oc.json'), config)
    write_json(os.path.join(d, SYNTHETIC + 'hf.json'), hf_config)
    return tensors


class ConvertSyntheticClip(unittest.TestCase):
    """A CLIP of other sizes than the fixture (like the held-out model: QuickGELU, other
    patch, widths, heads, context; an HF file with position_ids), generated here as OpenCLIP
    safetensors, OpenCLIP .bin and HF safetensors: all three give the same file, and its
    tensors are the generated ones under the ImageBind names."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.tensors = write_synthetic_clip(d)
        cls.files = {}
        for src, cfg in (('oc.safetensors', 'oc.json'), ('oc.bin', 'oc.json'),
                         ('hf.safetensors', 'hf.json')):
            out = os.path.join(d, src + '.gguf')
            status, stdout, stderr = convert_here(os.path.join(d, SYNTHETIC + src), out,
                                                  '--config', os.path.join(d, SYNTHETIC + cfg),
                                                  '--name', 'synthetic')
            assert status == 0, stderr
            cls.files[src] = Gguf(out)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_same_file_from_each_form(self):
        ref = self.files['oc.safetensors']
        for src, g in self.files.items():
            with self.subTest(src=src):
                self.assertEqual(list(g.tensors), list(ref.tensors))
                for name in ref.tensors:
                    self.assertEqual(g.tensors[name][:2], ref.tensors[name][:2])
                    self.assertEqual(g.values(name), ref.values(name), name)

    def test_tensors_and_keys(self):
        g = self.files['hf.safetensors']
        self.assertEqual(len(g.tensors), len(self.tensors))
        for name, (shape, vals) in self.tensors.items():
            target = openclip_target(name)
            if name in ('visual.proj', 'text_projection'):
                shape, vals = transpose(shape, vals)
            with self.subTest(tensor=name):
                self.assertEqual(g.values(target), tuple(f32(v) for v in vals))
                self.assertEqual(math.prod(g.tensors[target][0]), max(1, math.prod(shape)))
        self.assertEqual(torch_shape(g.tensors['modality_heads.text.proj.1.weight'][0], 2),
                         (24, 40))
        kv = g.kv
        expect = {'imagebind.out_embed_dim': 24, 'imagebind.vision.embed_dim': 48,
                  'imagebind.vision.num_blocks': 2, 'imagebind.vision.num_heads': 3,
                  'imagebind.vision.kernel_size': [1, 16, 16], 'imagebind.vision.image_size': 224,
                  'imagebind.vision.video_frames': 1, 'imagebind.text.embed_dim': 40,
                  'imagebind.text.num_blocks': 3, 'imagebind.text.num_heads': 5,
                  'imagebind.text.context_length': 16, 'imagebind.text.vocab_size': 600,
                  'imagebind.vision.activation': 'quick_gelu',
                  'imagebind.text.activation': 'quick_gelu'}
        for key, value in expect.items():
            for src, f in self.files.items():
                self.assertEqual(f.kv[key], value, (src, key))
        self.assertEqual(self.files['oc.bin'].kv['imagebind.vision.image_std'], [0.25] * 3)
        self.assertEqual(kv['imagebind.vision.image_std'],
                         [f32(v) for v in (0.26862954, 0.26130258, 0.27577711)])


def make_torchscript_like(path):
    """The layout of OpenAI's ViT-B-32.pt (a TorchScript archive): code/, constants.pkl."""
    with zipfile.ZipFile(path, 'w') as z:
        z.writestr('ViT-B-32/data.pkl', b'\x80\x02c__torch__.multimodal.model\nCLIP\n)\x81.')
        z.writestr('ViT-B-32/constants.pkl', b'\x80\x02).')
        z.writestr('ViT-B-32/code/__torch__/multimodal/model.py', 'class CLIP: pass\n')
        z.writestr('ViT-B-32/version', '1\n')


class PickleBounds(unittest.TestCase):
    """data.pkl's size and memo are bounded before unpickling; BUILD on the
    allow-list's stand-ins is refused; nothing is shared between files."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def zip_with_pickle(self, data, compress=zipfile.ZIP_STORED, name='p.pth'):
        path = os.path.join(self.tmp.name, name)
        with zipfile.ZipFile(path, 'w', compress) as z:
            z.writestr('archive/data.pkl', data)
            z.writestr('archive/version', '3\n')
        return path

    def refused(self, path, *fragments):
        status, stdout, stderr = convert_here(path, os.path.join(self.tmp.name, 'o.gguf'),
                                              '--preset', 'huge')
        self.assertEqual(status, 1, stderr)
        for frag in fragments:
            self.assertIn(frag, stderr)
        return stderr

    def test_pickle_bomb_refused_before_inflating(self):
        size = 64 << 20
        path = self.zip_with_pickle(b'\x80\x02' + b'N' * size, zipfile.ZIP_DEFLATED)
        self.assertLess(os.path.getsize(path), 1 << 20)
        z = zipfile.ZipFile(path)
        original_open = z.open
        z.close()
        opened = []

        def spy(self_, name, *a, **k):       # data.pkl must never be opened
            opened.append(getattr(name, 'filename', name))
            return original_open.__func__(self_, name, *a, **k)
        zipfile.ZipFile.open, saved = spy, zipfile.ZipFile.open
        try:
            self.refused(path, 'data.pkl inflates to %d bytes, beyond the 16777216-byte limit'
                         % (size + 2))
        finally:
            zipfile.ZipFile.open = saved
        self.assertNotIn('archive/data.pkl', opened)

    def test_lying_size_read_in_bounded_chunks(self):
        # the zip directory says 1000 bytes, the deflated stream holds 32 MB: reading stops at
        # the declared size and the zip's CRC check refuses the entry
        path = self.zip_with_pickle(b'\x80\x02' + b'N' * (32 << 20), zipfile.ZIP_DEFLATED)
        with open(path, 'rb') as f:
            buf = bytearray(f.read())
        for sig, field in ((b'PK\x03\x04', 22), (b'PK\x01\x02', 24)):
            pos = buf.find(sig)
            struct.pack_into('<I', buf, pos + field, 1000)
        with open(path, 'wb') as f:
            f.write(buf)
        self.refused(path, 'cannot read data.pkl from the zip')

    def test_memo_bounded(self):
        data = pickle.dumps([str(i) for i in range(300000)], protocol=4)
        self.assertLess(len(data), 16 << 20)
        self.refused(self.zip_with_pickle(data), 'data.pkl memoises more than 262144 objects')
        # the same with protocol 2's BINPUT/LONG_BINPUT
        data = pickle.dumps([str(i) for i in range(300000)], protocol=2)
        self.refused(self.zip_with_pickle(data), 'memoises more than')

    def test_malformed_pickles(self):
        for data in (b'', b'\x80\x02', b'\x80\x02(', b'\xff\xff', b'\x80\x02X\xff\xff\xff\x7f'):
            with self.subTest(data=data):
                self.refused(self.zip_with_pickle(data), 'cannot read data.pkl')

    def test_build_on_stand_ins_refused(self):
        state = b'}U\x01xK\x01s'          # {'x': 1}
        for target in (b'ctorch._utils\n_rebuild_tensor_v2\n', b'ctorch\nFloatStorage\n',
                       b'ctorch\nfloat32\n', b'ctorch\nTensor\n',
                       b'ctorch._tensor\n_rebuild_from_type_v2\n'):
            with self.subTest(target=target):
                data = b'\x80\x02' + target + state + b'b.'
                err = self.refused(self.zip_with_pickle(data), 'refusing to set attributes of',
                                   '(a BUILD opcode)', 'may be malicious')
                self.assertNotIn('Traceback', err)
        # slot state (a (dict, dict) pair) goes the same way
        data = b'\x80\x02ctorch\nHalfStorage\nN}U\x01xK\x01s\x86b.'
        self.refused(self.zip_with_pickle(data), 'refusing to set attributes of torch.HalfStorage')
        # on the real OrderedDict class (not an instance): Python refuses it, reported cleanly
        data = b'\x80\x02ccollections\nOrderedDict\n' + state + b'b.'
        self.refused(self.zip_with_pickle(data), 'cannot read data.pkl')

    def test_build_on_a_tensor_refused(self):
        # a valid tensor record, then BUILD on the LazyTensor it made
        pid = b'(U\x07storagectorch\nFloatStorage\nU\x010U\x03cpuK\x01t'
        tensor = (b'ctorch._utils\n_rebuild_tensor_v2\n(' + pid + b'QK\x00K\x01\x85K\x01\x85'
                  b'\x89ccollections\nOrderedDict\n)RtR')
        data = b'\x80\x02}U\x01a' + tensor + b'}U\x05shapeU\x01xsbs.'
        path = os.path.join(self.tmp.name, 't.pth')
        with zipfile.ZipFile(path, 'w') as z:
            z.writestr('archive/data.pkl', data)
            z.writestr('archive/data/0', b'\0' * 4)
        self.refused(path, 'refusing to set attributes of')

    def test_nothing_shared_between_files(self):
        a, b = ckpt_module._allowed_globals(), ckpt_module._allowed_globals()
        for key, value in a.items():
            if key != ('collections', 'OrderedDict'):
                self.assertIsNot(value, b[key], key)
        # a refused BUILD leaves the next file unaffected
        data = b'\x80\x02ctorch\nFloatStorage\n}U\x08itemsizeK\x03sb.'
        self.refused(self.zip_with_pickle(data), 'refusing to set attributes')
        if CONF is not None:
            c = ckpt_module.Checkpoint(fixture('tiny', 'imagebind_tiny.pth'))
            self.addCleanup(c.close)
            t = c.tensors['modality_preprocessors.vision.cls_token']
            self.assertEqual((t.dtype, t.storage.stype.itemsize), ('F32', 4))


def contiguous_stride(size):
    stride, acc = [], 1
    for d in reversed(size):
        stride.append(acc)
        acc *= d
    return tuple(reversed(stride))


@unittest.skipIf(CONF is None, 'conformance fixtures absent')
class ConvertTinyQ8(unittest.TestCase):
    """--dtype q8 (models/GGUF.md): matrices as I8 + one F32 scale per row, the token
    embedding F16, everything else F32; the values are the checkpoint's, rounded."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        out = os.path.join(cls.tmp.name, 'tiny-q8.gguf')
        r = run_convert(fixture('tiny', 'imagebind_tiny.pth'), out,
                        '--config', fixture('tiny', 'config.json'), '--dtype', 'q8')
        assert r.returncode == 0, r.stderr
        cls.g = Gguf(out)
        cls.tiny = TinyCheckpoint(fixture('tiny', 'imagebind_tiny.pth'))
        cls.index = read_json(fixture('tiny', 'state_dict_index.json'))['tensors']

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_policy_and_values(self):
        n_q8 = 0
        for t in self.index:
            name = t['name']
            if name == 'modality_preprocessors.text.mask':
                continue
            ne, ttype, offset = self.g.tensors[name]
            matrix = len(t['shape']) >= 2 and name.endswith('weight')
            with self.subTest(tensor=name):
                if name.endswith('token_embedding.weight'):
                    self.assertEqual(ttype, 1)
                elif not matrix:
                    self.assertEqual(ttype, 0)
                    self.assertNotIn(name + '.q8_scale', self.g.tensors)
                else:
                    n_q8 += 1
                    self.assertEqual(ttype, 24)
                    sne, stype, soff = self.g.tensors[name + '.q8_scale']
                    rows = t['shape'][0]
                    self.assertEqual((sne, stype), ((rows,), 0))
                    q, scales = self.g.values(name), self.g.values(name + '.q8_scale')
                    w = self.tiny.floats(name)
                    cols = len(w) // rows
                    for r in range(rows):
                        row = w[r * cols:(r + 1) * cols]
                        s = f32(max(map(abs, row)) / 127.0)
                        self.assertEqual(scales[r], s)
                        self.assertEqual(list(q[r * cols:(r + 1) * cols]),
                                         [max(-127, min(127, round(v / s))) for v in row])
                        self.assertEqual(max(map(abs, q[r * cols:(r + 1) * cols])), 127)
        # every block's four matrices (in_proj included), the stems but text's, the heads
        self.assertEqual(n_q8, 6 * 2 * 4 + 5 + 6)


if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] == '--write-synthetic-clip':
        write_synthetic_clip(sys.argv[2])
        sys.exit(0)
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
