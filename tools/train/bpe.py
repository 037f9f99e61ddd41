"""bpe.py - the byte-level BPE tokenizer of the home model: training on the
data, encoding, and the vocabulary as GGUF metadata.

Pre-tokenizer: llama.cpp's "gpt-2" (tokenizer.ggml.pre = "gpt-2", which
edgeagent's src/tokenizer/pretok.c implements):
  's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)
with the text between matches kept as pieces of its own. The training data
is ASCII, where \\p{L} is [A-Za-z] and \\p{N} is [0-9]; encode() refuses
other text rather than guess. Words become bytes mapped to printable code
points (GPT-2's byte table), then merges apply lowest rank first. No merge
involves the space: a word's pieces are the same with or without the space
before it, so the model copies a room name from the request into the
arguments piece for piece, and no merge involves an upper-case letter
(a capital is a token of its own, lower-cased by the model). Special
tokens (render.SPECIALS) are cut out of the text before pre-tokenizing.

Python 3 standard library only.
"""
import collections
import re

from render import SPECIALS

PRETOK = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)")
SPECIAL_RE = re.compile("|".join(re.escape(s) for s, _ in sorted(SPECIALS, key=lambda x: -len(x[0]))))


def byte_table():
    """GPT-2's bytes -> printable code points."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE2CH = byte_table()
# No merge takes in an upper-case letter: "Pantry" is "P" + the pieces of
# "antry", so lower-casing a copied value is one token's change.
_UPPER = re.compile("[A-Z]")
SPACE = BYTE2CH[ord(" ")]


def pretokenize(text):
    if not text.isascii():
        raise ValueError("bpe.py: non-ASCII text")
    out, pos = [], 0
    for m in PRETOK.finditer(text):
        if m.start() > pos:
            out.append(text[pos:m.start()])
        out.append(m.group())
        pos = m.end()
    if pos < len(text):
        out.append(text[pos:])
    return out


def split_specials(text):
    """[(is_special, piece)] in order."""
    out, pos = [], 0
    for m in SPECIAL_RE.finditer(text):
        if m.start() > pos:
            out.append((False, text[pos:m.start()]))
        out.append((True, m.group()))
        pos = m.end()
    if pos < len(text):
        out.append((False, text[pos:]))
    return out


def mapped(word):
    return "".join(BYTE2CH[b] for b in word.encode("utf-8"))


def train(texts, vocab_size):
    """Merges [(a, b)] learned from texts, for a vocabulary of vocab_size
    (256 bytes + merges + specials)."""
    counts = collections.Counter()
    for t in texts:
        for special, piece in split_specials(t):
            if not special:
                counts.update(pretokenize(piece))
    words = [list(mapped(w)) for w in counts]
    freq = list(counts.values())
    pairs = collections.Counter()
    where = collections.defaultdict(set)
    for i, w in enumerate(words):
        for a, b in zip(w, w[1:]):
            pairs[a, b] += freq[i]
            where[a, b].add(i)
    merges = []
    n_merges = vocab_size - 256 - len(SPECIALS)
    while len(merges) < n_merges and pairs:
        best = max(((p, c) for p, c in pairs.items() if SPACE not in p[0] and SPACE not in p[1]
                    and not _UPPER.search(p[0] + p[1])),
                   key=lambda kv: (kv[1], kv[0]), default=(None, 0))[0]
        if best is None:
            break
        if pairs[best] <= 1:
            break
        merges.append(best)
        a, b = best
        ab = a + b
        for i in list(where[best]):
            w = words[i]
            f = freq[i]
            for x, y in zip(w, w[1:]):
                pairs[x, y] -= f
                if pairs[x, y] <= 0:
                    del pairs[x, y]
            nw, j = [], 0
            while j < len(w):
                if j + 1 < len(w) and w[j] == a and w[j + 1] == b:
                    nw.append(ab)
                    j += 2
                else:
                    nw.append(w[j])
                    j += 1
            words[i] = nw
            for x, y in zip(nw, nw[1:]):
                pairs[x, y] += f
                where[x, y].add(i)
        where.pop(best, None)
    return merges


class Tokenizer:
    def __init__(self, merges):
        self.merges = merges
        self.rank = {m: i for i, m in enumerate(merges)}
        self.tokens = [s for s, _ in SPECIALS]  # specials first: small fixed ids
        self.types = [t for _, t in SPECIALS]
        for b in range(256):
            self.tokens.append(BYTE2CH[b])
            self.types.append(1)
        for a, b in merges:
            self.tokens.append(a + b)
            self.types.append(1)
        self.id = {t: i for i, t in enumerate(self.tokens)}
        assert len(self.id) == len(self.tokens), "duplicate tokens"
        self.cache = {}

    def special_id(self, s):
        return self.id[s]

    def word(self, w):
        if w in self.cache:
            return self.cache[w]
        syms = list(mapped(w))
        while len(syms) > 1:
            best, bi = None, -1
            for i in range(len(syms) - 1):
                r = self.rank.get((syms[i], syms[i + 1]))
                if r is not None and (best is None or r < best):
                    best, bi = r, i
            if best is None:
                break
            syms[bi:bi + 2] = [syms[bi] + syms[bi + 1]]
        ids = [self.id[s] for s in syms]
        self.cache[w] = ids
        return ids

    def encode(self, text):
        ids = []
        for special, piece in split_specials(text):
            if special:
                ids.append(self.id[piece])
            else:
                for w in pretokenize(piece):
                    ids += self.word(w)
        return ids

    def decode(self, ids):
        inv = {v: k for k, v in BYTE2CH.items()}
        out = bytearray()
        for i in ids:
            t = self.tokens[i]
            if self.types[i] != 1:
                out += t.encode()
            else:
                out += bytes(inv[c] for c in t)
        return out.decode("utf-8", "replace")
