#!/usr/bin/env python3
"""Converts an official ImageBind checkpoint (torch.save of ImageBindModel.state_dict()) into
the gst-imagebind model file (models/GGUF.md). Standard library only: no torch, no numpy.

  python3 models/convert.py imagebind_huge.pth imagebind-huge.gguf --preset huge \\
      --dtype f16 --bpe bpe_simple_vocab_16e6.txt.gz

The checkpoint's pickle is read with an unpickler that resolves only the names a state dict
uses (a .pth from the internet cannot run code here), every expected tensor is checked against
the configuration before anything is written, and tensors are streamed one at a time, so the
4.8 GB official file converts in little memory.
"""

import argparse
import gzip
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from imagebind_gguf.architecture import (  # noqa: E402
    CONTEXT_LENGTH, IMAGE_SIZE, IMU_NUM_SAMPLES, IMU_WINDOW, MODALITIES, NOT_STORED, PRESETS,
    ConfigError, ModelConfig, gguf_shape, load_config, modality_of, stored_as_f16)
from imagebind_gguf.checkpoint import (  # noqa: E402
    FLOAT_DTYPES, Checkpoint, CheckpointError, convert_elements)
from imagebind_gguf.gguf_writer import GGUFWriter  # noqa: E402

# Pre-processing constants of the official loaders (ARCHITECTURE.md §7-8); written so that a
# reader never has to assume them.
AUDIO_SAMPLE_RATE = 16000
AUDIO_CLIP_DURATION = 2.0
AUDIO_CLIPS_PER_VIDEO = 3
AUDIO_FBANK_MEAN = -4.268
AUDIO_FBANK_STD = 9.138
SPECIAL_TOKENS = 2        # <|startoftext|>, <|endoftext|>
BYTE_SYMBOLS = 512        # 256 bytes, and the same with </w>

MAX_LISTED = 8            # problems of each kind shown before "... and N more"


class ConvertError(Exception):
    """A user error: reported in one message, exit status 1, no traceback."""


def read_merges(path, count):
    """The first `count` BPE merges of a CLIP vocabulary file (gzip or plain text): lines after
    the header."""
    try:
        with open(path, 'rb') as f:
            gzipped = f.read(2) == b'\x1f\x8b'
        with (gzip.open if gzipped else open)(path, 'rt', encoding='utf-8') as f:
            text = f.read()
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise ConvertError('cannot read BPE vocabulary %s: %s' % (path, e)) from None
    lines = text.split('\n')
    if lines and lines[-1] == '':
        lines.pop()
    merges = [line.rstrip('\r') for line in lines[1:1 + count]]
    if len(merges) < count:
        raise ConvertError('BPE vocabulary %s has %d merges; the %d-entry token embedding '
                           'needs %d' % (path, len(merges), count + BYTE_SYMBOLS
                                         + SPECIAL_TOKENS, count))
    bad = [i for i, m in enumerate(merges) if len(m.split(' ')) != 2]
    if bad:
        raise ConvertError('BPE vocabulary %s: line %d is not a merge "a b": %.60r'
                           % (path, bad[0] + 2, merges[bad[0]]))
    return merges


def _listing(title, items):
    shown = ['  ' + s for s in items[:MAX_LISTED]]
    if len(items) > MAX_LISTED:
        shown.append('  ... and %d more' % (len(items) - MAX_LISTED))
    return ['%s (%d):' % (title, len(items))] + shown


def select_modalities(ckpt, config, wanted):
    """The modalities to convert: those with tensors in the checkpoint (and in --modalities)."""
    in_checkpoint = [m for m in MODALITIES
                     if any(modality_of(k) == m for k in ckpt.tensors)]
    if not in_checkpoint:
        raise ConvertError('%s holds no ImageBind tensor (keys like %s)'
                           % (ckpt.path, ', '.join(list(ckpt.tensors)[:3]) or 'none'))
    if wanted:
        missing = [m for m in wanted if m not in in_checkpoint]
        if missing:
            raise ConvertError('--modalities: %s not in the checkpoint (it has %s)'
                               % (', '.join(missing), ', '.join(in_checkpoint)))
        chosen = [m for m in in_checkpoint if m in wanted]
    else:
        chosen = in_checkpoint
    undescribed = [m for m in chosen if m not in config.modalities]
    if undescribed:
        raise ConvertError('the checkpoint has %s but the configuration does not describe it '
                           '(no %s_embed_dim/num_blocks/num_heads); add it to the config or '
                           'choose modalities with --modalities'
                           % (' and '.join(undescribed), undescribed[0]))
    return chosen


def validate(ckpt, config, modalities):
    """Checks the checkpoint against the configuration; returns the names to store in file
    order. Raises ConvertError listing missing, unexpected and mismatched tensors."""
    expected = {}
    for m in modalities:
        expected.update(config.expected_tensors(m))
    missing = [k for k in expected if k not in ckpt.tensors and k not in NOT_STORED]
    unexpected, mismatched, not_float = [], [], []
    for name, t in ckpt.tensors.items():
        m = modality_of(name)
        if m is not None and m not in modalities:
            continue     # a modality left out on purpose
        if name not in expected:
            unexpected.append('%s %s' % (name, tuple(t.shape)))
        elif tuple(t.shape) != expected[name]:
            mismatched.append('%s: checkpoint %s, config expects %s'
                              % (name, tuple(t.shape), expected[name]))
        elif t.dtype not in FLOAT_DTYPES:
            not_float.append('%s: %s' % (name, t.dtype))
    if missing or unexpected or mismatched or not_float:
        lines = ['%s does not match the configuration (%s):'
                 % (ckpt.path, ', '.join(modalities))]
        for title, items in (('shape mismatches', mismatched), ('missing tensors', missing),
                             ('unexpected tensors', unexpected),
                             ('tensors that are not floating point', not_float)):
            if items:
                lines += _listing(title, items)
        raise ConvertError('\n'.join(lines))
    return [k for k in ckpt.tensors if k in expected and k not in NOT_STORED]


def add_keys(writer, config, modalities, name, merges):
    writer.add_string('general.architecture', 'imagebind')
    writer.add_string('general.name', name)
    writer.add_u32('general.alignment', writer.alignment)
    writer.add_u32('imagebind.out_embed_dim', config.out_embed_dim)
    writer.add_string_array('imagebind.modalities', modalities)
    for m in modalities:
        p = config.modalities[m]
        writer.add_u32('imagebind.%s.embed_dim' % m, p.embed_dim)
        writer.add_u32('imagebind.%s.num_blocks' % m, p.num_blocks)
        writer.add_u32('imagebind.%s.num_heads' % m, p.num_heads)
        if m == 'vision':
            writer.add_u32_array('imagebind.vision.kernel_size', config.kernel_size)
            writer.add_u32('imagebind.vision.image_size', IMAGE_SIZE)
            writer.add_u32('imagebind.vision.video_frames', config.video_frames)
        elif m == 'text':
            writer.add_u32('imagebind.text.context_length', CONTEXT_LENGTH)
            writer.add_u32('imagebind.text.vocab_size', config.vocab_size)
        elif m == 'audio':
            writer.add_u32('imagebind.audio.kernel_size', config.audio_kernel_size)
            writer.add_u32('imagebind.audio.stride', config.audio_stride)
            writer.add_u32('imagebind.audio.num_mel_bins', config.audio_num_mel_bins)
            writer.add_u32('imagebind.audio.target_len', config.audio_target_len)
            writer.add_u32('imagebind.audio.sample_rate', AUDIO_SAMPLE_RATE)
            writer.add_f32('imagebind.audio.clip_duration', AUDIO_CLIP_DURATION)
            writer.add_u32('imagebind.audio.clips_per_video', AUDIO_CLIPS_PER_VIDEO)
            writer.add_f32('imagebind.audio.fbank_mean', AUDIO_FBANK_MEAN)
            writer.add_f32('imagebind.audio.fbank_std', AUDIO_FBANK_STD)
        elif m in ('depth', 'thermal'):
            writer.add_u32('imagebind.%s.kernel_size' % m, getattr(config, m + '_kernel_size'))
        elif m == 'imu':
            writer.add_u32('imagebind.imu.kernel_size', IMU_WINDOW)
            writer.add_u32('imagebind.imu.num_samples', IMU_NUM_SAMPLES)
    if merges is not None:
        writer.add_string('tokenizer.ggml.model', 'clip-bpe')
        writer.add_string_array('tokenizer.ggml.merges', merges)


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog='convert.py',
        description='Convert an official ImageBind checkpoint (.pth) to a gst-imagebind GGUF file.')
    ap.add_argument('checkpoint', help='torch.save(model.state_dict()) zip file')
    ap.add_argument('output', help='GGUF file to write')
    cfg = ap.add_mutually_exclusive_group(required=True)
    cfg.add_argument('--config', help='JSON with constructor_args (as conformance/tiny/config.json)')
    cfg.add_argument('--preset', choices=sorted(PRESETS), help='official configuration')
    ap.add_argument('--dtype', choices=('f32', 'f16'), default='f32',
                    help='type of weight matrices (vectors, tables and scalars stay f32)')
    ap.add_argument('--bpe', help='BPE vocabulary to embed: CLIP\'s bpe_simple_vocab_16e6.txt.gz, or '
                    'a plain-text merges file with a header line (its merges must fill the '
                    'config\'s vocab_size, default 49408)')
    ap.add_argument('--name', help='general.name (default: preset or checkpoint name)')
    ap.add_argument('--modalities',
                    help='comma-separated subset to convert (default: all in the checkpoint)')
    return ap.parse_args(argv)


def convert(args):
    if args.preset:
        config_args = dict(PRESETS[args.preset])
        default_name = 'imagebind_' + args.preset
    else:
        config_args = load_config(args.config)
        default_name = os.path.splitext(os.path.basename(args.checkpoint))[0]
    config = ModelConfig(config_args)
    wanted = None
    if args.modalities:
        wanted = [m.strip() for m in args.modalities.split(',') if m.strip()]
        unknown = [m for m in wanted if m not in MODALITIES]
        if unknown:
            raise ConvertError('--modalities: unknown %s (choose from %s)'
                               % (', '.join(unknown), ', '.join(MODALITIES)))
    if not os.path.isfile(args.checkpoint):
        raise ConvertError('%s: no such file' % args.checkpoint)
    ckpt = Checkpoint(args.checkpoint)
    try:
        modalities = select_modalities(ckpt, config, wanted)
        names = validate(ckpt, config, modalities)
        merges = None
        if args.bpe:
            merges = read_merges(args.bpe, config.vocab_size - BYTE_SYMBOLS - SPECIAL_TOKENS)

        writer = GGUFWriter()
        add_keys(writer, config, modalities, args.name or default_name, merges)
        for name in names:
            shape = ckpt.tensors[name].shape
            f16 = args.dtype == 'f16' and stored_as_f16(name, shape)
            writer.add_tensor(name, gguf_shape(shape), 'F16' if f16 else 'F32')

        def chunks(info):
            t = ckpt.tensors[info.name]
            for raw in ckpt.iter_raw(t):
                try:
                    yield convert_elements(raw, t.dtype, info.ttype)
                except CheckpointError as e:
                    raise ConvertError('tensor %s: %s; use --dtype f32' % (info.name, e)) from None

        size = writer.write(args.output, chunks)
    finally:
        ckpt.close()

    n_params = sum(t.numel for t in writer.tensors)
    print('wrote %s: %d tensors, %d parameters, %d bytes (%s weights)'
          % (args.output, len(writer.tensors), n_params, size, args.dtype))
    print('  out_embed_dim %d' % config.out_embed_dim)
    for m in modalities:
        p = config.modalities[m]
        count = sum(t.numel for t in writer.tensors if modality_of(t.name) == m)
        print('  %-8s D %5d  blocks %3d  heads %3d  tokens %4d  parameters %d'
              % (m, p.embed_dim, p.num_blocks, p.num_heads, config.num_tokens(m), count))
    print('  tokenizer: %s' % ('%d BPE merges' % len(merges) if merges is not None
                               else 'none (no --bpe)'))


def main(argv=None):
    args = parse_args(argv)
    try:
        convert(args)
    except (ConvertError, ConfigError, CheckpointError) as e:
        print('convert.py: error: %s' % e, file=sys.stderr)
        return 1
    except OSError as e:
        print('convert.py: error: %s' % e, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
