#!/usr/bin/env python3
"""export_gguf.py - writes the home model as GGUF for edgeagent: the llama
hyper-parameters (src/model/model_load.c reads llama.*), the tensors under
llama.cpp's names (token_embd, blk.N.attn_q ... output_norm, output), the
BPE vocabulary (tokenizer.ggml.model "gpt2", pre "gpt-2", merges) and the
chat template (render.CHAT_TEMPLATE).

Usage: export_gguf.py CHECKPOINT.pt OUT.gguf [--f16]
       export_gguf.py --vocab-only MERGES.json OUT.gguf   (tokenizer checks)
Holds: the mapping of names and keys. Does not hold: the file format
(gguf_writer.py), the model (model.py).
"""
import argparse
import json

import gguf_writer as gw
import render
from bpe import Tokenizer

RMS_EPS = 1e-5
ROPE_BASE = 10000.0


def add_vocab(w, tok):
    w.add_str("tokenizer.ggml.model", "gpt2")
    w.add_str("tokenizer.ggml.pre", "gpt-2")
    w.add_arr("tokenizer.ggml.tokens", gw.T_STR, tok.tokens)
    w.add_arr("tokenizer.ggml.token_type", gw.T_I32, tok.types)
    w.add_arr("tokenizer.ggml.merges", gw.T_STR, ["%s %s" % m for m in tok.merges])
    w.add_u32("tokenizer.ggml.bos_token_id", tok.special_id(render.ENDOFTEXT))
    w.add_u32("tokenizer.ggml.eos_token_id", tok.special_id(render.IM_END))
    w.add_u32("tokenizer.ggml.eot_token_id", tok.special_id(render.IM_END))
    w.add_u32("tokenizer.ggml.padding_token_id", tok.special_id(render.ENDOFTEXT))
    w.add_bool("tokenizer.ggml.add_bos_token", False)
    w.add_bool("tokenizer.ggml.add_eos_token", False)
    w.add_str("tokenizer.chat_template", render.CHAT_TEMPLATE)


def export(ck, out, f16=False):
    cfg = ck["config"]
    tok = Tokenizer([tuple(m) for m in ck["merges"]])
    sd = {k: v.float().numpy() for k, v in ck["model"].items()}
    w = gw.Writer()
    w.add_str("general.architecture", "llama")
    w.add_str("general.type", "model")
    w.add_str("general.name", "edgeagent-home")
    w.add_str("general.description", "edgeagent's built-in home/device agent: tool calls for a fixed "
              "toolset, <handoff> for anything else (tools/train)")
    w.add_u32("general.file_type", 1 if f16 else 0)
    w.add_u32("llama.block_count", cfg["n_layer"])
    w.add_u32("llama.context_length", cfg["n_ctx"])
    w.add_u32("llama.embedding_length", cfg["d"])
    w.add_u32("llama.feed_forward_length", cfg["ff"])
    w.add_u32("llama.attention.head_count", cfg["n_head"])
    w.add_u32("llama.attention.head_count_kv", cfg["n_kv"])
    w.add_f32("llama.attention.layer_norm_rms_epsilon", RMS_EPS)
    w.add_f32("llama.rope.freq_base", ROPE_BASE)
    hd = cfg["d"] // cfg["n_head"]
    w.add_u32("llama.rope.dimension_count", hd)
    w.add_u32("llama.attention.key_length", hd)
    w.add_u32("llama.attention.value_length", hd)
    w.add_u32("llama.vocab_size", len(tok.tokens))
    add_vocab(w, tok)
    mt = gw.GGML_F16 if f16 else gw.GGML_F32
    w.add_tensor("token_embd.weight", sd["emb.weight"], mt)
    w.add_tensor("output_norm.weight", sd["norm.weight"])
    w.add_tensor("output.weight", sd["head.weight"], mt)
    for i in range(cfg["n_layer"]):
        p = "layers.%d." % i
        b = "blk.%d." % i
        w.add_tensor(b + "attn_norm.weight", sd[p + "attn_norm.weight"])
        w.add_tensor(b + "attn_q.weight", sd[p + "wq.weight"], mt)
        w.add_tensor(b + "attn_k.weight", sd[p + "wk.weight"], mt)
        w.add_tensor(b + "attn_v.weight", sd[p + "wv.weight"], mt)
        w.add_tensor(b + "attn_output.weight", sd[p + "wo.weight"], mt)
        w.add_tensor(b + "ffn_norm.weight", sd[p + "ffn_norm.weight"])
        w.add_tensor(b + "ffn_gate.weight", sd[p + "w_gate.weight"], mt)
        w.add_tensor(b + "ffn_up.weight", sd[p + "w_up.weight"], mt)
        w.add_tensor(b + "ffn_down.weight", sd[p + "w_down.weight"], mt)
    w.write(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", help="checkpoint .pt (or merges .json with --vocab-only)")
    ap.add_argument("out")
    ap.add_argument("--f16", action="store_true", help="matrices as F16 (default F32)")
    ap.add_argument("--vocab-only", action="store_true")
    a = ap.parse_args()
    if a.vocab_only:
        tok = Tokenizer([tuple(m) for m in json.load(open(a.src))])
        w = gw.Writer()
        w.add_str("general.architecture", "llama")
        add_vocab(w, tok)
        w.write(a.out)
        return
    import torch
    export(torch.load(a.src), a.out, a.f16)


if __name__ == "__main__":
    main()
