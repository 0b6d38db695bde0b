"""The default model's BPE vocabulary, learned from the caption corpus with CLIP's scheme.

Byte-level BPE as in CLIP (../shared/spec/ARCHITECTURE.md §9): a text is lower-cased and split
into words (letter runs, single digits, runs of other symbols, contractions); each word's UTF-8
bytes become symbols through CLIP's byte-to-character table, the last one marked "</w>"; merges
are learned greedily, most frequent adjacent pair first (ties: the pair that sorts first), and
applied at encoding time in rank order. Ids: 0-255 bytes, 256-511 bytes + "</w>", 512 + rank
for merges, then <|startoftext|>, <|endoftext|>. The captions are plain lower-case ASCII, so the
cleaning stage of the C tokenizer (ftfy, HTML unescape) leaves them unchanged.
"""

import collections
import re

HEADER = '#version: gst-imagebind default model, learned by models/train/bpe.py'
CONTEXT_LENGTH = 77

# The CLIP pre-tokenizer restricted to what a caption may hold: the C tokenizer implements the
# full Unicode one; for ASCII both split the same way.
SPLIT = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[a-z]+|[0-9]|[^\sa-z0-9]+")


def bytes_to_unicode():
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


BYTE_CHARS = bytes_to_unicode()


def words(text):
    text = ' '.join(text.split()).lower()
    return [''.join(BYTE_CHARS[b] for b in w.encode('utf-8')) for w in SPLIT.findall(text)]


def symbols(word):
    return tuple(word[:-1]) + (word[-1] + '</w>',)


def learn(corpus, max_merges, min_count=2):
    """Merges ("a b" strings, rank order) learned from a list of texts."""
    vocab = collections.Counter(symbols(w) for text in corpus for w in words(text))
    merges = []
    while len(merges) < max_merges:
        pairs = collections.Counter()
        for word, count in vocab.items():
            for a, b in zip(word, word[1:]):
                pairs[(a, b)] += count
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        if pairs[best] < min_count:
            break
        merges.append(best)
        merged = collections.Counter()
        for word, count in vocab.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += count
        vocab = merged
    return ['%s %s' % m for m in merges]


class Tokenizer:
    """Encodes texts to the 77 ids the text encoder takes, as the C tokenizer does."""

    def __init__(self, merges):
        self.ranks = {tuple(m.split(' ')): i for i, m in enumerate(merges)}
        chars = list(BYTE_CHARS.values())
        vocab = chars + [c + '</w>' for c in chars] + [m.replace(' ', '') for m in merges]
        self.ids = {s: i for i, s in enumerate(vocab)}
        self.sot = len(vocab)
        self.eot = len(vocab) + 1
        self.vocab_size = len(vocab) + 2

    def bpe(self, word):
        parts = list(symbols(word))
        while len(parts) > 1:
            pairs = set(zip(parts, parts[1:]))
            best = min(pairs, key=lambda p: self.ranks.get(p, float('inf')))
            if best not in self.ranks:
                break
            out, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and (parts[i], parts[i + 1]) == best:
                    out.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            parts = out
        return parts

    def encode(self, text):
        ids = [self.ids[s] for w in words(text) for s in self.bpe(w)]
        seq = ([self.sot] + ids)[:CONTEXT_LENGTH - 1] + [self.eot]
        return seq + [0] * (CONTEXT_LENGTH - len(seq))


def save(path, merges):
    with open(path, 'w', encoding='utf-8') as f:
        f.write(HEADER + '\n')
        for m in merges:
            f.write(m + '\n')


def load(path):
    with open(path, encoding='utf-8') as f:
        lines = f.read().split('\n')
    return [line for line in lines[1:] if line]
