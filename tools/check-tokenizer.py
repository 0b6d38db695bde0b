#!/usr/bin/env python3
"""Compares imagebind-tokenize with the official text preprocessing on generated texts.

The reference follows ARCHITECTURE.md §9 with the real libraries: ftfy 6.3.1 (its source tree
on --ftfy, or an installed one) and the `regex` module. Not a test (it needs those modules);
run it after changing models/tokenizer.c or models/text-clean.c:

    python3 tools/check-tokenizer.py --tool build/tools/imagebind-tokenize \\
        --vocab ../shared/conformance/preprocess/bpe_simple_vocab_16e6.txt.gz \\
        --ftfy /path/to/python-ftfy-6.3.1 [--lines 5000] [--seed 1]

Prints the number of texts whose BPE ids differ (all ids, no cut) and the first few.
"""
import argparse
import gzip
import html
import random
import subprocess
import sys

FRAGMENTS = [
    "&", "&amp", "&amp;", "&#", "&#x41;", "&#0;", "&#128;", "&#xD800;", "&#99999999;", "&EACUTE;",
    "&eacute", "&notit;", "&nbsp", "&lt", "<", ">", ";", "\x1b[1;31m", "\x1b", "\x00", "\x01",
    "\x0b", "\x1a", "\x7f", "\x85", "\x80", "\x81", "\ufeff", "\u200b", "\u2028", "\r\n", "\n",
    "\t", " ", "\u00a0", "\u3000", "Ã", "Â", "Ã©", "â€", "â€™", "ðŸ˜€", "Ã ", "Ð¿Ñ€", "Ã¢â‚¬",
    "Â©", "€", "ƒ", "Œ", "ﬁ", "ŉ", "Ǆ", "ＡＢ", "ｶ", "“", "’", "ʼ", "İ", "Σ", "ΑΣ", "Ⅻ", "Ⓐ",
    "ß", "ſ", "'s", "'ll", "'", "dog", "x1", "42", "٣", "½", "e\u0301", "\u212b", "🍕",
    "👍🏽", "東京", "한", "<|endoftext|>", "<|startoftext|>", "...", "Crème brûlée", "naïve",
]
CODEPAGES = ['latin-1', 'cp1252', 'cp1251', 'cp1250', 'cp1253', 'mac_roman', 'cp437']


def generate(n, seed):
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        text = ''.join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 15)))
        if rng.random() < 0.3:   # mojibake of the whole text
            text = text.encode('utf-8').decode(rng.choice(CODEPAGES), errors='ignore')
        texts.append(text)
    return texts


class Reference:
    """The official tokenizer's algorithm (§9), written out for this check."""

    def __init__(self, vocab_path, n_merges=48894):
        import regex
        self.regex = regex
        keep = [b for b in range(256) if 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255]
        moved = [b for b in range(256) if b not in keep]
        self.byte_char = {b: chr(b) for b in keep}
        self.byte_char.update({b: chr(256 + i) for i, b in enumerate(moved)})
        symbols = [self.byte_char[b] for b in keep + moved]
        lines = gzip.open(vocab_path).read().decode('utf-8').split('\n')[1:1 + n_merges]
        merges = [tuple(line.split()) for line in lines]
        vocab = symbols + [s + '</w>' for s in symbols] + [''.join(m) for m in merges]
        vocab += ['<|startoftext|>', '<|endoftext|>']
        self.ids = {s: i for i, s in enumerate(vocab)}
        self.rank = {m: r for r, m in enumerate(merges)}
        self.split = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d"""
                                   r"""|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""", regex.IGNORECASE)

    def bpe(self, piece):
        if piece in ('<|startoftext|>', '<|endoftext|>'):
            return [piece]
        word = list(piece[:-1]) + [piece[-1] + '</w>']
        while len(word) > 1:
            ranked = [(self.rank.get(p, None), p) for p in zip(word, word[1:])]
            ranked = [rp for rp in ranked if rp[0] is not None]
            if not ranked:
                break
            first, second = min(ranked)[1]
            merged, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        return word

    def encode(self, text, fix_text):
        text = html.unescape(html.unescape(fix_text(text))).strip()
        text = self.regex.sub(r'\s+', ' ', text).strip().lower()
        out = []
        for piece in self.split.findall(text):
            piece = ''.join(self.byte_char[b] for b in piece.encode('utf-8'))
            out.extend(self.ids[s] for s in self.bpe(piece))
        return out


def escape(text):
    return text.replace('\\', '\\\\').replace('\n', '\\n').replace('\r', '\\r')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--tool', required=True)
    ap.add_argument('--vocab', required=True)
    ap.add_argument('--ftfy', help='ftfy 6.3.1 source tree (else the installed ftfy)')
    ap.add_argument('--lines', type=int, default=3000)
    ap.add_argument('--seed', type=int, default=1)
    args = ap.parse_args()
    if args.ftfy:
        sys.path.insert(0, args.ftfy)
    import ftfy

    texts = generate(args.lines, args.seed)
    ref = Reference(args.vocab)
    want = [' '.join(map(str, ref.encode(t, ftfy.fix_text))) for t in texts]
    run = subprocess.run([args.tool, '--vocab', args.vocab, '--all'], check=True,
                         input='\n'.join(escape(t) for t in texts).encode('utf-8') + b'\n',
                         capture_output=True)
    got = run.stdout.decode().split('\n')[:len(texts)]
    bad = [i for i in range(len(texts)) if got[i] != want[i]]
    print('%d texts, %d differ (ftfy %s)' % (len(texts), len(bad), ftfy.__version__))
    for i in bad[:5]:
        print('  %a\n    official %s\n    ours     %s' % (texts[i], want[i], got[i]))
    return 1 if bad else 0


sys.exit(main())
