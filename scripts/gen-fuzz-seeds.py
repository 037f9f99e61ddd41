#!/usr/bin/env python3
"""gen-fuzz-seeds.py - writes the small seed GGUF files of fuzz/corpus/gguf.
Run from the repository root; the output is committed."""
import os
import struct

def s(x: bytes) -> bytes:
    return struct.pack('<Q', len(x)) + x

def kv(key, vt, payload):
    return s(key.encode()) + struct.pack('<I', vt) + payload

def gguf(kvs, tensors, align=32, version=3):
    head = b'GGUF' + struct.pack('<IQQ', version, len(tensors), len(kvs)) + b''.join(kvs)
    infos, data, off = b'', b'', 0
    for name, ttype, ne, blob in tensors:
        off += (-off) % align
        infos += s(name.encode()) + struct.pack('<I', len(ne)) + b''.join(struct.pack('<Q', n) for n in ne)
        infos += struct.pack('<IQ', ttype, off)
        data += b'\0' * (off - len(data)) + blob
        off += len(blob)
    out = head + infos
    if tensors:
        out += b'\0' * ((-len(out)) % align)
        data += b'\0' * ((-len(data)) % align)
    return out + data

os.makedirs('fuzz/corpus/gguf', exist_ok=True)
def write(name, b):
    with open(f'fuzz/corpus/gguf/{name}', 'wb') as f:
        f.write(b)

meta = [
    kv('general.architecture', 8, s(b'llama')),
    kv('llama.block_count', 4, struct.pack('<I', 2)),
    kv('llama.rope.freq_base', 6, struct.pack('<f', 10000.0)),
    kv('t.bool', 7, b'\x01'),
    kv('t.i64', 11, struct.pack('<q', -5)),
    kv('t.f64', 12, struct.pack('<d', 0.5)),
    kv('t.u8', 0, b'\x07'), kv('t.i8', 1, b'\xff'), kv('t.u16', 2, b'\x01\x02'), kv('t.i16', 3, b'\xff\xff'),
    kv('t.i32', 5, struct.pack('<i', -9)), kv('t.u64', 10, struct.pack('<Q', 1 << 40)),
    kv('tokenizer.ggml.tokens', 9, struct.pack('<IQ', 8, 3) + s(b'<s>') + s(b'a') + s(b'\xe2\x96\x81b')),
    kv('tokenizer.ggml.scores', 9, struct.pack('<IQ', 6, 3) + struct.pack('<3f', 0, -1, -2)),
    kv('t.nested', 9, struct.pack('<IQ', 9, 2) + struct.pack('<IQ', 4, 1) + struct.pack('<I', 3)
       + struct.pack('<IQ', 8, 1) + s(b'x')),
]
tensors = [
    ('token_embd.weight', 0, [4, 3], struct.pack('<12f', *range(12))),
    ('blk.0.attn_q.weight', 1, [8, 2], b'\x00\x3c' * 16),
    ('blk.0.ffn.weight', 2, [32, 1], b'\x00\x3c' + bytes(range(16))),
    ('blk.0.k.weight', 12, [256], bytes(144)),
]
write('full.gguf', gguf(meta, tensors))
write('aligned64.gguf', gguf([kv('general.alignment', 4, struct.pack('<I', 64))] + meta[:3], tensors[:2], 64))
write('vocab_only.gguf', gguf(meta[12:14], []))
write('empty_v2.gguf', gguf([], [], version=2))
write('one_tensor.gguf', gguf(meta[:1], tensors[:1]))
