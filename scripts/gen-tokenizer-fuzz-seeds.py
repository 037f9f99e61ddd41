#!/usr/bin/env python3
"""gen-tokenizer-fuzz-seeds.py - writes the seeds of fuzz/corpus/tokenizer_load:
a mode byte (0: GGUF image, 1: tokenizer.json) followed by a small vocabulary.
Run from the repository root; the output is committed."""
import json
import os
import struct


def s(x: bytes) -> bytes:
    return struct.pack('<Q', len(x)) + x


def kv(key, vt, payload):
    return s(key.encode()) + struct.pack('<I', vt) + payload


def str_arr(key, items):
    return kv(key, 9, struct.pack('<IQ', 8, len(items)) + b''.join(s(i.encode()) for i in items))


def num_arr(key, vt, fmt, items):
    return kv(key, 9, struct.pack('<IQ', vt, len(items)) + b''.join(struct.pack(fmt, i) for i in items))


def gguf(kvs):
    return b'GGUF' + struct.pack('<IQQ', 3, 0, len(kvs)) + b''.join(kvs)


def gpt2_char(b):
    if b <= 0x20:
        return chr(0x100 + b)
    if 0x7F <= b <= 0xA0:
        return chr(0x121 + b - 0x7F)
    if b == 0xAD:
        return chr(0x143)
    return chr(b)


out = 'fuzz/corpus/tokenizer_load'
os.makedirs(out, exist_ok=True)


def write(name, mode, body):
    with open(f'{out}/{name}', 'wb') as f:
        f.write(bytes([mode]) + body)


# SPM: specials, byte tokens, a few pieces with scores
spm = ['<unk>', '<s>', '</s>'] + ['<0x%02X>' % b for b in range(256)] + \
      ['\u2581', '\u2581H', 'el', 'lo', '\u2581w', 'or', 'ld', 'Hello', 'H', 'e', 'l', 'o', 'w', 'r', 'd']
types = [2, 3, 3] + [6] * 256 + [1] * 15
scores = [0.0] * 3 + [0.0] * 256 + [-float(i) for i in range(15)]
write('spm.gguf', 0, gguf([
    kv('tokenizer.ggml.model', 8, s(b'llama')),
    str_arr('tokenizer.ggml.tokens', spm),
    num_arr('tokenizer.ggml.token_type', 5, '<i', types),
    num_arr('tokenizer.ggml.scores', 6, '<f', scores),
    kv('tokenizer.ggml.bos_token_id', 4, struct.pack('<I', 1)),
    kv('tokenizer.ggml.eos_token_id', 4, struct.pack('<I', 2)),
    kv('tokenizer.ggml.add_bos_token', 7, b'\x01'),
]))

# BPE: the 256 mapped bytes, a few merges, two specials
base = [gpt2_char(b) for b in range(256)]
merges = ['H e', 'l l', 'He ll', 'Hell o', '\u0120 w', '\u0120w o', 'r l', 'rl d', '\u0120wo rld']
extra = ['He', 'll', 'Hell', 'Hello', '\u0120w', '\u0120wo', 'rl', 'rld', '\u0120world']
bpe = base + extra + ['<|endoftext|>', '<|im_start|>', '<|im_end|>']
write('bpe.gguf', 0, gguf([
    kv('tokenizer.ggml.model', 8, s(b'gpt2')),
    kv('tokenizer.ggml.pre', 8, s(b'qwen2')),
    str_arr('tokenizer.ggml.tokens', bpe),
    num_arr('tokenizer.ggml.token_type', 5, '<i', [1] * (len(bpe) - 3) + [3, 3, 3]),
    str_arr('tokenizer.ggml.merges', merges),
    kv('tokenizer.ggml.eos_token_id', 4, struct.pack('<I', len(bpe) - 1)),
]))

vocab = {t: i for i, t in enumerate(base + extra)}
n = len(vocab)
added = [{'id': n, 'content': '<|endoftext|>', 'special': True},
         {'id': n + 1, 'content': '<think>', 'special': False}]
llama3 = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
          "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
tok = {
    'added_tokens': added,
    'pre_tokenizer': {'type': 'Sequence', 'pretokenizers': [
        {'type': 'Split', 'pattern': {'Regex': llama3}, 'behavior': 'Isolated', 'invert': False},
        {'type': 'ByteLevel', 'add_prefix_space': False, 'use_regex': False}]},
    'post_processor': {'type': 'TemplateProcessing', 'single': [
        {'SpecialToken': {'id': '<|endoftext|>', 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}}]},
    'decoder': {'type': 'ByteLevel'},
    'model': {'type': 'BPE', 'vocab': vocab, 'merges': merges},
}
write('llama3.json', 1, json.dumps(tok).encode())
tok['model']['merges'] = [m.split(' ') for m in merges]
tok['pre_tokenizer'] = {'type': 'ByteLevel', 'add_prefix_space': False, 'use_regex': True}
del tok['post_processor']
write('gpt2-pairs.json', 1, json.dumps(tok).encode())
