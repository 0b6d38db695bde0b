#!/usr/bin/python3
"""Trains the default model with ImageBind's recipe on the synthetic world (README.md).

  /usr/bin/python3 models/train/train.py --data DATA --out OUT

Stage 1 (our stand-in for the OpenCLIP initialisation): the image and text encoders learn
together with the symmetric InfoNCE loss on (image, caption) pairs, the text encoder's logit
scale learnable as in the official model. Stage 2: both are frozen; audio, depth, thermal and
IMU are each bound to the images with the symmetric InfoNCE loss on (image, modality) pairs,
with the modality's fixed logit scale as the temperature. No (modality, text) pair is ever
used: text reaches them only through the images (emergent zero-shot).

--supervised-audio additionally trains a fresh audio encoder on (audio, caption) pairs against
the frozen text encoder: the supervised upper bound of the results table (not shipped).

Writes OUT/merges.txt (the BPE vocabulary, learned first from the caption grammar),
OUT/default.pth (state dict of every modality), OUT/supervised-audio.pth and OUT/train.log.
Deterministic for a given seed on one thread.
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
import model as ib  # noqa: E402
import world  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BIND = ('audio', 'depth', 'thermal', 'imu')


class Log:
    def __init__(self, path):
        self.f = open(path, 'a')

    def __call__(self, *args):
        line = ' '.join(str(a) for a in args)
        print(line, flush=True)
        self.f.write(line + '\n')
        self.f.flush()


def load_split(data, split):
    d = os.path.join(data, split)
    out = {m: np.load(os.path.join(d, m + '.npy'), mmap_mode='r') for m in
           ('vision',) + BIND}
    out['labels'] = np.load(os.path.join(d, 'labels.npy'))
    with open(os.path.join(d, 'params.json')) as f:
        out['records'] = json.load(f)
    return out


def batch_tensor(arr, idx, m):
    x = torch.from_numpy(np.ascontiguousarray(arr[idx]).astype(np.float32))
    if m == 'audio':
        x = x[:, 0]           # (N, 1, 1, 128, 204): one clip -> (N, 1, 128, 204)
    return x


def balanced_batches(labels, rng, per_class):
    """An epoch of batches holding `per_class` scenes of every class (distinct classes are
    the negatives; no batch pairs an item with a same-class 'negative' beyond per_class)."""
    classes = np.unique(labels)
    perms = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    n = min(len(p) for p in perms) // per_class
    for b in range(n):
        idx = np.concatenate([p[b * per_class:(b + 1) * per_class] for p in perms])
        yield rng.permutation(idx)


def info_nce(a, b):
    """Symmetric InfoNCE on logits a @ b.T (scales already applied to the embeddings)."""
    logits = a @ b.t()
    target = torch.arange(a.shape[0])
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


def translate(x, rng, most=32):
    """Moves each image by up to `most` pixels in x and y (wrapping around): things may be
    anywhere in the frame (the ball is, the patterns repeat)."""
    out = torch.empty_like(x)
    for i in range(x.shape[0]):
        dy, dx = (int(v) for v in rng.integers(-most, most + 1, 2))
        out[i] = torch.roll(x[i], (dy, dx), (-2, -1))
    return out


def mel_shift(x, rng, most=3):
    """Shifts each spectrogram up or down by up to `most` mel bins (edge bins repeated):
    roughly a change of pitch, so that frequencies between the trained ones are met."""
    out = torch.empty_like(x)
    bins = x.shape[-2]
    for i in range(x.shape[0]):
        k = int(rng.integers(-most, most + 1))
        idx = torch.clamp(torch.arange(bins) - k, 0, bins - 1)
        out[i] = x[i][..., idx, :]
    return out


def cosine_lr(opt, base, step, total, warmup):
    lr = base * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / total))
    for g in opt.param_groups:
        g['lr'] = lr


@torch.no_grad()
def embed_all(model, m, arr, bs=32, normalize_only=False):
    model.eval()
    out = [model.embed(m, batch_tensor(arr, np.arange(i, min(i + bs, len(arr))), m),
                       normalize_only) for i in range(0, len(arr), bs)]
    return torch.cat(out)


@torch.no_grad()
def zero_shot(model, tok, emb, labels):
    """Top-1 accuracy of text prompts (image and sound prompts of every class) on embeddings."""
    model.eval()
    accs = {}
    for kind, prompt in (('image prompts', world.image_prompt),
                         ('sound prompts', world.sound_prompt)):
        ids = torch.tensor([tok.encode(prompt(s)) for s in world.SCENES])
        t = model.embed('text', ids, normalize_only=True)
        pred = (F.normalize(emb, dim=-1) @ t.t()).argmax(1).numpy()
        accs[kind] = float((pred == labels).mean())
    return accs


def train_stage1(model, tok, train, held, args, log):
    rng = np.random.default_rng(args.seed + 1)
    params = list(model.modality_preprocessors['vision'].parameters()) + \
        list(model.modality_trunks['vision'].parameters()) + \
        list(model.modality_heads['vision'].parameters()) + \
        list(model.modality_preprocessors['text'].parameters()) + \
        list(model.modality_trunks['text'].parameters()) + \
        list(model.modality_heads['text'].parameters()) + \
        list(model.modality_postprocessors['text'].parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.05)
    captions = [[tok.encode(c) for c in r['captions']] for r in train['records']]
    steps_per_epoch = len(train['labels']) // (len(world.SCENES) * args.per_class)
    total = steps_per_epoch * args.epochs1
    step = 0
    for epoch in range(args.epochs1):
        model.train()
        t0, losses = time.time(), []
        for idx in balanced_batches(train['labels'], rng, args.per_class):
            x = batch_tensor(train['vision'], idx, 'vision')
            flip = torch.from_numpy(rng.random(len(idx)) < 0.5)
            x[flip] = x[flip].flip(-1)               # mirror images: cheap augmentation
            x = translate(x, rng)
            ids = torch.tensor([captions[i][rng.integers(len(captions[i]))] for i in idx])
            cosine_lr(opt, args.lr, step, total, 20)
            loss = info_nce(model.embed('vision', x), model.embed('text', ids))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
        emb = embed_all(model, 'vision', held['vision'])
        log('stage 1 epoch %d loss %.4f text scale %.2f held-out %s (%.0f s)'
            % (epoch, np.mean(losses), model.logit_scale('text').item(),
               zero_shot(model, tok, emb, held['labels']), time.time() - t0))


def train_bind(model, m, targets, tok, train, held, held_images, args, log, seed):
    """Binds modality m to fixed target embeddings (images, or captions when supervised)."""
    rng = np.random.default_rng(seed)
    params = list(model.modality_preprocessors[m].parameters()) + \
        list(model.modality_trunks[m].parameters()) + list(model.modality_heads[m].parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.05)
    steps_per_epoch = len(train['labels']) // (len(world.SCENES) * args.per_class)
    total = steps_per_epoch * args.epochs2
    step = 0
    for epoch in range(args.epochs2):
        model.train()
        t0, losses = time.time(), []
        for idx in balanced_batches(train['labels'], rng, args.per_class):
            x = batch_tensor(train[m], idx, m)
            if m == 'audio':
                x = mel_shift(x, rng)
            target = targets(idx, rng)
            cosine_lr(opt, args.lr, step, total, 20)
            loss = info_nce(target, model.embed(m, x))    # modality embedding carries its scale
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
        if epoch % 4 == 3 or epoch == args.epochs2 - 1:
            emb = embed_all(model, m, held[m])
            r1 = float(((F.normalize(emb, dim=-1) @ held_images.t()).argmax(1).numpy()
                        == np.arange(len(emb))).mean())
            log('stage 2 %s epoch %d loss %.4f held-out %s R@1 %.3f (%.0f s)'
                % (m, epoch, np.mean(losses), zero_shot(model, tok, emb, held['labels']), r1,
                   time.time() - t0))
        else:
            log('stage 2 %s epoch %d loss %.4f (%.0f s)' % (m, epoch, np.mean(losses),
                                                          time.time() - t0))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--data', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--config', default=os.path.join(HERE, 'config.json'))
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--epochs1', type=int, default=10)
    ap.add_argument('--epochs2', type=int, default=12)
    ap.add_argument('--per-class', type=int, default=1, help='scenes of each class per batch')
    ap.add_argument('--lr', type=float, default=5e-4)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--stage1', help='skip stage 1: load this checkpoint')
    ap.add_argument('--modalities', default=','.join(BIND), help='stage 2 modalities')
    ap.add_argument('--supervised-audio', action='store_true')
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    log = Log(os.path.join(args.out, 'train.log'))
    log('train.py', ' '.join(sys.argv[1:]), 'torch', torch.__version__)

    merges = bpe.learn(world.all_captions(), 1000)
    bpe.save(os.path.join(args.out, 'merges.txt'), merges)
    tok = bpe.Tokenizer(merges)
    with open(args.config) as f:
        cfg = json.load(f)['constructor_args']
    if cfg['vocab_size'] != tok.vocab_size:
        sys.exit('train.py: config vocab_size %d, the learned vocabulary has %d ids: update %s'
                 % (cfg['vocab_size'], tok.vocab_size, args.config))
    log('BPE: %d merges, vocabulary %d' % (len(merges), tok.vocab_size))

    train = load_split(args.data, world.TRAIN)
    held = load_split(args.data, world.HELD_OUT)
    model = ib.ImageBindModel(cfg)
    t_start = time.time()
    if args.stage1:
        model.load_state_dict(torch.load(args.stage1))
    else:
        train_stage1(model, tok, train, held, args, log)
        torch.save(model.state_dict(), os.path.join(args.out, 'stage1.pth'))
    log('stage 1: %.0f s' % (time.time() - t_start))

    # Stage 2: the image encoder is frozen, its embeddings computed once.
    for p in model.parameters():
        p.requires_grad_(False)
    images = embed_all(model, 'vision', train['vision'])
    held_images = embed_all(model, 'vision', held['vision'])
    for k, m in enumerate(args.modalities.split(',')):
        t0 = time.time()
        for p in list(model.modality_preprocessors[m].parameters()) + \
                list(model.modality_trunks[m].parameters()) + \
                list(model.modality_heads[m].parameters()):
            p.requires_grad_(True)
        train_bind(model, m, lambda idx, rng: images[idx], tok, train, held, held_images, args,
                   log, args.seed + 10 + k)
        for p in model.parameters():
            p.requires_grad_(False)
        log('stage 2 %s: %.0f s' % (m, time.time() - t0))
        torch.save(model.state_dict(), os.path.join(args.out, 'default.pth'))

    if args.supervised_audio:
        # Upper bound: the same audio encoder, fresh, trained on (audio, caption) pairs.
        t0 = time.time()
        torch.manual_seed(args.seed + 100)
        sup = ib.ImageBindModel(cfg)
        sup.modality_preprocessors['text'] = model.modality_preprocessors['text']
        sup.modality_trunks['text'] = model.modality_trunks['text']
        sup.modality_heads['text'] = model.modality_heads['text']
        sup.modality_postprocessors['text'] = model.modality_postprocessors['text']
        sup.modality_preprocessors['vision'] = model.modality_preprocessors['vision']
        sup.modality_trunks['vision'] = model.modality_trunks['vision']
        sup.modality_heads['vision'] = model.modality_heads['vision']
        captions = [[tok.encode(c) for c in r['captions']] for r in train['records']]

        def caption_targets(idx, rng):
            ids = torch.tensor([captions[i][rng.integers(len(captions[i]))] for i in idx])
            with torch.no_grad():
                return sup.embed('text', ids, normalize_only=True)

        train_bind(sup, 'audio', caption_targets, tok, train, held, held_images, args, log,
                   args.seed + 200)
        torch.save(sup.state_dict(), os.path.join(args.out, 'supervised-audio.pth'))
        log('supervised audio: %.0f s' % (time.time() - t0))
    log('total: %.0f s' % (time.time() - t_start))


if __name__ == '__main__':
    main()
