"""ImageBind in PyTorch, written from ../shared/spec/ARCHITECTURE.md: the same modules, the
same computation and the same state-dict keys as the official ImageBindModel, so that
models/convert.py turns a checkpoint of it into a model file exactly as it does the official
one. Only what training needs: no clip averaging (the training data holds single clips).
"""

import math

import torch
from torch import nn
import torch.nn.functional as F

MODALITIES = ('vision', 'text', 'audio', 'depth', 'thermal', 'imu')
FIXED_SCALES = {'audio': 20.0, 'depth': 5.0, 'thermal': 10.0, 'imu': 5.0}
CONTEXT_LENGTH = 77


class Mlp(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block (§3); bias_kv adds the learned extra key and value."""

    def __init__(self, d, heads, bias_kv):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, bias=True, add_bias_kv=bias_kv,
                                          batch_first=True)
        self.norm_1 = nn.LayerNorm(d, eps=1e-6)
        self.mlp = Mlp(d)
        self.norm_2 = nn.LayerNorm(d, eps=1e-6)

    def forward(self, x, mask=None):
        h = self.norm_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.norm_2(x))


class Trunk(nn.Module):
    def __init__(self, d, blocks, heads, bias_kv, ln_pre):
        super().__init__()
        self.pre_transformer_layer = nn.Sequential(
            nn.LayerNorm(d, eps=1e-6) if ln_pre else nn.Identity())
        self.blocks = nn.ModuleList(Block(d, heads, bias_kv) for _ in range(blocks))

    def forward(self, x, mask=None):
        x = self.pre_transformer_layer(x)
        for b in self.blocks:
            x = b(x, mask)
        return x


class Stem(nn.Module):
    """proj (+ LayerNorm eps 1e-5 for audio, depth, thermal, IMU)."""

    def __init__(self, proj, d, norm):
        super().__init__()
        self.proj = proj
        if norm:
            self.norm_layer = nn.LayerNorm(d, eps=1e-5)
        else:
            self.norm_layer = None

    def forward(self, x):
        conv = self.proj[1] if isinstance(self.proj, nn.Sequential) else self.proj
        if isinstance(conv, (nn.Conv2d, nn.Conv3d)) and conv.kernel_size == conv.stride:
            x = patch_project(x, conv.weight)        # same numbers, much faster on CPU
        else:
            x = self.proj(x)
            if x.dim() > 3:                           # conv output (N, D, ...) -> (N, P, D)
                x = x.flatten(2).transpose(1, 2)
        return self.norm_layer(x) if self.norm_layer is not None else x


def patch_project(x, w):
    """A convolution whose stride equals its kernel, as patch extraction and one matrix
    product: (N, C, *S) -> (N, P, D), patches in row-major order of the output grid."""
    k = w.shape[2:]
    n, c = x.shape[:2]
    grid = [s // kk for s, kk in zip(x.shape[2:], k)]
    x = x[(slice(None), slice(None)) + tuple(slice(0, g * kk) for g, kk in zip(grid, k))]
    shape = [n, c]
    for g, kk in zip(grid, k):
        shape += [g, kk]
    x = x.reshape(shape)
    nd = len(k)
    # (N, C, g0, k0, g1, k1, ...) -> (N, g0, g1, ..., C, k0, k1, ...)
    perm = [0] + [2 + 2 * i for i in range(nd)] + [1] + [3 + 2 * i for i in range(nd)]
    x = x.permute(perm).reshape(n, -1, w[0].numel())
    return x @ w.reshape(w.shape[0], -1).t()


class PosEmbed(nn.Module):
    def __init__(self, length, d):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, length, d))


class PatchPreprocessor(nn.Module):
    """cls token + stem + positions, for vision, audio, depth and thermal."""

    def __init__(self, stem_name, stem, length, d):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.stem_name = stem_name
        setattr(self, stem_name, stem)
        self.pos_embedding_helper = PosEmbed(length, d)
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.pos_embedding_helper.pos_embed, std=0.02)

    def forward(self, x):
        if self.stem_name == 'rgbt_stem' and x.dim() == 4 and x.shape[1] == 3:
            x = x.unsqueeze(2).repeat(1, 1, 2, 1, 1)    # an image is a 2-frame clip
        t = getattr(self, self.stem_name)(x)
        t = torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], 1)
        return t + self.pos_embedding_helper.pos_embed


class ImuPreprocessor(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, 251, d))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.imu_stem = Stem(nn.Linear(48, d, bias=False), d, True)
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.02)

    def forward(self, x):                                  # (N, 6, 2000)
        n = x.shape[0]
        w = x.reshape(n, 6, 250, 8).permute(0, 2, 1, 3).reshape(n, 250, 48)   # channel-major
        t = self.imu_stem(w)
        t = torch.cat([self.cls_token.expand(n, -1, -1), t], 1)
        return t + self.pos_embed


class TextPreprocessor(nn.Module):
    def __init__(self, vocab, d):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, CONTEXT_LENGTH, d))
        mask = torch.full((CONTEXT_LENGTH, CONTEXT_LENGTH), float('-inf')).triu_(1)
        self.register_buffer('mask', mask)
        self.token_embedding = nn.Embedding(vocab, d)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.01)

    def forward(self, ids):
        return self.token_embedding(ids) + self.pos_embed


class SelectElement(nn.Module):
    def forward(self, x):
        return x[:, 0]


class TextHead(nn.Module):
    def __init__(self, d, out):
        super().__init__()
        self.proj = nn.Sequential(nn.LayerNorm(d, eps=1e-6), nn.Linear(d, out, bias=False))

    def forward(self, x, ids):
        return self.proj(x[torch.arange(x.shape[0]), ids.argmax(dim=-1)])


class Normalize(nn.Module):
    def forward(self, x):
        return F.normalize(x, dim=-1)


class LogitScaling(nn.Module):
    def __init__(self, init, learnable):
        super().__init__()
        value = torch.ones([]) * math.log(init)
        if learnable:
            self.log_logit_scale = nn.Parameter(value)
        else:
            self.register_buffer('log_logit_scale', value)

    def forward(self, x):
        return torch.clamp(self.log_logit_scale.exp(), max=100) * x


class ImageBindModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        out = cfg['out_embed_dim']
        d = {m: cfg[m + '_embed_dim'] for m in MODALITIES}
        pre, trunks, heads, post = {}, {}, {}, {}
        # Stem geometry: the constructor arguments of the official model (kernel_size,
        # audio_kernel_size, audio_stride, depth/thermal_kernel_size) on the official input sizes.
        kt, kh, kw = cfg['kernel_size']
        vis_tokens = (2 // kt) * (224 // kh) * (224 // kw) + 1
        ak, ast = cfg['audio_kernel_size'], cfg['audio_stride']
        aud_tokens = ((128 - ak) // ast + 1) * ((204 - ak) // ast + 1) + 1
        dk, tk = cfg['depth_kernel_size'], cfg['thermal_kernel_size']
        pre['vision'] = PatchPreprocessor('rgbt_stem', Stem(nn.Sequential(
            nn.Identity(), nn.Conv3d(3, d['vision'], (kt, kh, kw), (kt, kh, kw), bias=False)),
            d['vision'], False), vis_tokens, d['vision'])
        pre['text'] = TextPreprocessor(cfg['vocab_size'], d['text'])
        pre['audio'] = PatchPreprocessor('rgbt_stem', Stem(
            nn.Conv2d(1, d['audio'], ak, ast, bias=False), d['audio'], True), aud_tokens,
            d['audio'])
        pre['depth'] = PatchPreprocessor('depth_stem', Stem(
            nn.Conv2d(1, d['depth'], dk, dk, bias=False), d['depth'], True),
            (224 // dk) ** 2 + 1, d['depth'])
        pre['thermal'] = PatchPreprocessor('rgbt_stem', Stem(
            nn.Conv2d(1, d['thermal'], tk, tk, bias=False), d['thermal'], True),
            (224 // tk) ** 2 + 1, d['thermal'])
        pre['imu'] = ImuPreprocessor(d['imu'])
        for m in MODALITIES:
            trunks[m] = Trunk(d[m], cfg[m + '_num_blocks'], cfg[m + '_num_heads'],
                              m in FIXED_SCALES, m == 'vision')
            if m == 'text':
                heads[m] = TextHead(d[m], out)
            elif m == 'imu':
                heads[m] = nn.Sequential(nn.LayerNorm(d[m], eps=1e-6), SelectElement(),
                                         nn.Dropout(0.5), nn.Linear(d[m], out, bias=False))
            else:
                heads[m] = nn.Sequential(nn.LayerNorm(d[m], eps=1e-6), SelectElement(),
                                         nn.Linear(d[m], out, bias=False))
            if m == 'vision':
                post[m] = Normalize()
            elif m == 'text':
                post[m] = nn.Sequential(Normalize(), LogitScaling(1 / 0.07, True))
            else:
                post[m] = nn.Sequential(Normalize(), LogitScaling(FIXED_SCALES[m], False))
        self.modality_preprocessors = nn.ModuleDict(pre)
        self.modality_trunks = nn.ModuleDict(trunks)
        self.modality_heads = nn.ModuleDict(heads)
        self.modality_postprocessors = nn.ModuleDict(post)

    def embed(self, m, x, normalize_only=False):
        """(N, ...) input -> (N, out): the official forward for one modality, single clips."""
        t = self.modality_preprocessors[m](x)
        t = self.modality_trunks[m](t, self.modality_preprocessors['text'].mask
                                    if m == 'text' else None)
        h = self.modality_heads[m](t, x) if m == 'text' else self.modality_heads[m](t)
        if normalize_only:
            return F.normalize(h, dim=-1)
        return self.modality_postprocessors[m](h)

    def logit_scale(self, m):
        return self.modality_postprocessors[m][1].log_logit_scale.exp().clamp(max=100)
