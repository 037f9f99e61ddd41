"""gguf_writer.py - a minimal GGUF v3 writer (written from the format
specification: header, metadata key/values, tensor infos, aligned data).

Holds: metadata of the scalar, string and array types, F32 and F16 tensors.
Does not hold: reading, quantized types. Python 3 standard library, numpy
for the tensor bytes.

Layout (little-endian):
  "GGUF" u32 version=3, u64 n_tensors, u64 n_kv
  n_kv x (string key, u32 type, value)          string = u64 length + bytes
  n_tensors x (string name, u32 n_dims, u64 ne[n_dims], u32 ggml type,
               u64 offset from the data section, a multiple of ALIGNMENT)
  padding to ALIGNMENT, then the tensor data, each padded to ALIGNMENT.
ne[0] is the innermost (contiguous) dimension: a torch weight of shape
(rows, cols) is ne = [cols, rows].
"""
import struct

import numpy as np

ALIGNMENT = 32

# metadata value types
T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR, T_U64, T_I64, T_F64 = range(13)
# tensor types (ggml)
GGML_F32, GGML_F16 = 0, 1


def _str(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


_SCALAR = {T_U8: "<B", T_I8: "<b", T_U16: "<H", T_I16: "<h", T_U32: "<I", T_I32: "<i",
           T_F32: "<f", T_BOOL: "<?", T_U64: "<Q", T_I64: "<q", T_F64: "<d"}


def _value(vtype, v):
    if vtype == T_STR:
        return _str(v)
    return struct.pack(_SCALAR[vtype], v)


class Writer:
    def __init__(self):
        self.kv = []  # (key, bytes)
        self.tensors = []  # (name, ne, type, bytes)

    def add(self, key, vtype, v):
        self.kv.append((key, struct.pack("<I", vtype) + _value(vtype, v)))

    def add_str(self, key, v):
        self.add(key, T_STR, v)

    def add_u32(self, key, v):
        self.add(key, T_U32, v)

    def add_f32(self, key, v):
        self.add(key, T_F32, v)

    def add_bool(self, key, v):
        self.add(key, T_BOOL, v)

    def add_arr(self, key, etype, values):
        b = struct.pack("<IIQ", T_ARR, etype, len(values))
        b += b"".join(_value(etype, v) for v in values)
        self.kv.append((key, b))

    def add_tensor(self, name, array, ttype=GGML_F32):
        a = np.ascontiguousarray(array)
        if ttype == GGML_F32:
            data = a.astype("<f4").tobytes()
        elif ttype == GGML_F16:
            data = a.astype("<f2").tobytes()
        else:
            raise ValueError("gguf_writer: tensor type %d" % ttype)
        ne = list(reversed(a.shape))
        self.tensors.append((name, ne, ttype, data))

    def write(self, path):
        head = b"GGUF" + struct.pack("<IQQ", 3, len(self.tensors), len(self.kv))
        for k, b in self.kv:
            head += _str(k) + b
        off = 0
        offs = []
        for name, ne, ttype, data in self.tensors:
            offs.append(off)
            head += _str(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
            head += struct.pack("<IQ", ttype, off)
            off += len(data)
            off += -off % ALIGNMENT
        head += b"\0" * (-len(head) % ALIGNMENT)
        with open(path, "wb") as f:
            f.write(head)
            for (name, ne, ttype, data), o in zip(self.tensors, offs):
                f.write(data)
                f.write(b"\0" * (-len(data) % ALIGNMENT))
