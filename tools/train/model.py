"""model.py - the home model: a small Llama-architecture decoder in torch
(RMSNorm, RoPE on adjacent pairs as edgeagent's `llama` architecture and
llama.cpp apply it, SwiGLU feed-forward, grouped-query attention when
n_kv < n_head, an output head of its own or (config tie) the token
embeddings).

The parameter names map one to one onto GGUF tensors (export_gguf.py);
torch's Linear weight (out, in) is GGUF ne = [in, out] as it is, and Q/K
need no permutation because RoPE here already rotates adjacent pairs.
Does not hold: training (train.py), decoding for evaluation (train.py).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

RMS_EPS = 1e-5
ROPE_BASE = 10000.0


class RMSNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + RMS_EPS) * self.weight


def rope_tables(hd, n, device=None):
    inv = ROPE_BASE ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    ang = torch.arange(n, dtype=torch.float64)[:, None] * inv[None, :]
    return ang.cos().float(), ang.sin().float()


def rope(x, cos, sin):
    """x (B, H, T, hd): rotate pairs (x[2i], x[2i+1]) by pos * theta_i."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), -1).flatten(-2)


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, self.h, self.kv = c["d"], c["n_head"], c["n_kv"]
        self.hd = d // self.h
        self.attn_norm = RMSNorm(d)
        self.wq = nn.Linear(d, self.h * self.hd, bias=False)
        self.wk = nn.Linear(d, self.kv * self.hd, bias=False)
        self.wv = nn.Linear(d, self.kv * self.hd, bias=False)
        self.wo = nn.Linear(self.h * self.hd, d, bias=False)
        self.ffn_norm = RMSNorm(d)
        self.w_gate = nn.Linear(d, c["ff"], bias=False)
        self.w_up = nn.Linear(d, c["ff"], bias=False)
        self.w_down = nn.Linear(c["ff"], d, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        h = self.attn_norm(x)
        q = self.wq(h).view(B, T, self.h, self.hd).transpose(1, 2)
        k = self.wk(h).view(B, T, self.kv, self.hd).transpose(1, 2)
        v = self.wv(h).view(B, T, self.kv, self.hd).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        if self.kv != self.h:
            k = k.repeat_interleave(self.h // self.kv, 1)
            v = v.repeat_interleave(self.h // self.kv, 1)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.hd)) + mask
        o = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, self.h * self.hd)
        x = x + self.wo(o)
        h = self.ffn_norm(x)
        return x + self.w_down(F.silu(self.w_gate(h)) * self.w_up(h))


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.emb = nn.Embedding(c["vocab"], c["d"])
        self.layers = nn.ModuleList(Layer(c) for _ in range(c["n_layer"]))
        self.norm = RMSNorm(c["d"])
        self.head = nn.Linear(c["d"], c["vocab"], bias=False)
        if c.get("tie"):  # output head = token embeddings (exported as both tensors)
            self.head.weight = self.emb.weight
        cos, sin = rope_tables(c["d"] // c["n_head"], c["n_ctx"])
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        for n, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02
                if n.endswith("wo.weight") or n.endswith("w_down.weight"):
                    std = 0.02 / math.sqrt(2 * c["n_layer"])
                nn.init.normal_(p, 0.0, std)

    def forward(self, ids):
        T = ids.shape[1]
        mask = torch.full((T, T), float("-inf")).triu(1)
        x = self.emb(ids)
        cos, sin = self.cos[:T], self.sin[:T]
        for ly in self.layers:
            x = ly(x, cos, sin, mask)
        return self.head(self.norm(x))
