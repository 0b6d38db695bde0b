#!/usr/bin/env python3
"""Tests of models/convert.py (standard library only).

The tiny conformance checkpoint is converted to GGUF (f32 and f16) and the files are read back
with a small reader written here independently of the converter: every tensor's shape, sum and
first values are compared with tiny/state_dict_index.json (made by the official code), the keys
with tiny/config.json. Hostile and mismatched checkpoints must be refused with exit status 1.
"""

import collections
import io
import json
import math
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import types
import unittest
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
CONVERT = os.path.join(HERE, '..', 'models', 'convert.py')


def conformance_dir():
    for var in ('IMAGEBIND_CONFORMANCE_DIR', 'IMAGEBIND_CONFORMANCE_DIR_DEFAULT'):
        d = os.environ.get(var)
        if d and os.path.isdir(d):
            return d
    d = os.path.join(HERE, '..', '..', 'shared', 'conformance')
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
        code, size = {0: ('f', 4), 1: ('e', 2)}[ttype]
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
    for name in ('FloatStorage', 'HalfStorage'):
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
        sys.path.insert(0, os.path.join(HERE, '..', 'models'))
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
    offsets, strides and half storage."""

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
        self.assertEqual(self.files['hf'].kv['tokenizer.clip.special_tokens'], 'openai')

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


def contiguous_stride(size):
    stride, acc = [], 1
    for d in reversed(size):
        stride.append(acc)
        acc *= d
    return tuple(reversed(stride))


if __name__ == '__main__':
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
