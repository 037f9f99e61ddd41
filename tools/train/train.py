#!/usr/bin/env python3
"""train.py - trains the home model from scratch on the train split, selects
the checkpoint by loss on the val split (heldout is never read here), and
writes the checkpoint, the loss log and the loss curves (PNG).

Loss is on the assistant answer only (its tokens and the closing
<|im_end|>). One thread (torch.set_num_threads(1)): the machine is shared.
Deterministic for a seed on one machine.

Usage: train.py DATA_DIR TOOLS.json MERGES.json OUT_DIR [--steps N] ...
Writes OUT_DIR/model.pt, OUT_DIR/losses.json, OUT_DIR/losses.png. A file
OUT_DIR/STOP ends the run early (checked every step); a file OUT_DIR/END
holding a step number moves the end of the schedule there (--end-at).
"""
import argparse
import json
import math
import os
import re
import random
import sys
import time

import torch
import torch.nn.functional as F

import eval_torch
import plot
import render
from bpe import Tokenizer
from model import Model


VALUE_RE = re.compile(r':("(?:[^"\\]|\\.)*"|-?[0-9][0-9.]*|true|false)')


def value_spans(answer):
    """Character spans of the argument values in an answer's calls."""
    spans, pos = [], 0
    while True:
        i = answer.find('"arguments":', pos)
        if i < 0:
            return spans
        j = answer.find(render.CALL_CLOSE, i)
        j = len(answer) if j < 0 else j
        for m in VALUE_RE.finditer(answer, i + len('"arguments":'), j):
            q = 1 if m.group(1).startswith('"') else 0  # the text inside the quotes
            spans.append((m.start(1) + q, m.end(1) - q))
        pos = j


def encode_split(path, tools, tok, n_ctx, limit=None, value_weight=1.0):
    """[(ids, mask)]: mask 0 on the prompt, the loss weight on the answer
    (value_weight on the tokens of argument values, 1 elsewhere)."""
    out, dropped = [], 0
    im_end = tok.special_id(render.IM_END)
    tok_len = [len(tok.decode([i])) for i in range(len(tok.tokens))]
    with open(path) as f:
        for i, line in enumerate(f):
            if limit is not None and i >= limit:
                break
            ex = json.loads(line)
            p = tok.encode(render.render(ex["messages"], tools))
            text = render.answer(ex)
            a = tok.encode(text) + [im_end]
            ids = p + a
            if len(ids) > n_ctx + 1:
                dropped += 1
                continue
            w = [1.0] * len(a)
            if value_weight != 1.0:
                spans, at = value_spans(text), 0
                for k, t in enumerate(a[:-1]):
                    if any(s0 < at + tok_len[t] and at < s1 for s0, s1 in spans):
                        w[k] = value_weight
                    at += tok_len[t]
            out.append((ids, [0.0] * len(p) + w))
    return out, dropped


def batches(data, tokens_per_batch, rng):
    """Batches of similar length (sorted within shuffled chunks)."""
    idx = list(range(len(data)))
    rng.shuffle(idx)
    chunk = 2048
    out = []
    for c in range(0, len(idx), chunk):
        part = sorted(idx[c:c + chunk], key=lambda i: len(data[i][0]))
        b, longest = [], 0
        for i in part:
            L = len(data[i][0]) - 1
            if b and max(longest, L) * (len(b) + 1) > tokens_per_batch:
                out.append(b)
                b, longest = [], 0
            b.append(i)
            longest = max(longest, L)
        if b:
            out.append(b)
    rng.shuffle(out)
    return out


def tensors(data, b, pad):
    T = max(len(data[i][0]) for i in b) - 1
    x = torch.full((len(b), T), pad, dtype=torch.long)
    y = torch.full((len(b), T), -100, dtype=torch.long)
    wt = torch.zeros((len(b), T))
    for r, i in enumerate(b):
        ids, m = data[i]
        n = len(ids) - 1
        x[r, :n] = torch.tensor(ids[:-1])
        tgt = torch.tensor(ids[1:])
        mw = torch.tensor(m[1:])
        y[r, :n] = torch.where(mw > 0, tgt, torch.full_like(tgt, -100))
        wt[r, :n] = mw
    return x, y, wt


def copy_batch(rng, n, normal, sep):
    """An auxiliary task that teaches copying (induction): n sequences
    `filler K V filler SEP K V` of random ordinary tokens, the loss on the
    second V (V: 1-5 tokens). SEP is <|endoftext|>, which chat data never
    contains. Returns (x, y) like tensors()."""
    rows = []
    for _ in range(n):
        k = rng.choice(normal)
        v = [rng.choice(normal) for _ in range(rng.randint(1, 5))]
        a = [rng.choice(normal) for _ in range(rng.randint(3, 30))]
        b = [rng.choice(normal) for _ in range(rng.randint(0, 20))]
        seq = a + [k] + v + b + [sep, k] + v
        rows.append((seq, len(seq) - len(v)))
    T = max(len(r[0]) for r in rows) - 1
    x = torch.full((n, T), sep, dtype=torch.long)
    y = torch.full((n, T), -100, dtype=torch.long)
    for r, (seq, start) in enumerate(rows):
        x[r, :len(seq) - 1] = torch.tensor(seq[:-1])
        y[r, start - 1:len(seq) - 1] = torch.tensor(seq[start:])
    return x, y


def copy_pretrain(model, opt, rng, steps, normal, sep, lr):
    """Warm-up on pure copying: sequences `S SEP S` of 24 random ordinary
    tokens, the loss on the second S, batches of 32. A model of this size
    learns it in ~150 steps (induction heads), which the home task then
    uses to copy slot values; on the home data alone it had not begun to
    copy after 1,500 steps."""
    L, B = 24, 32
    for step in range(1, steps + 1):
        x = torch.empty((B, 2 * L), dtype=torch.long)
        y = torch.full((B, 2 * L), -100, dtype=torch.long)
        for b in range(B):
            seq = [rng.choice(normal) for _ in range(L)]
            full = seq + [sep] + seq
            x[b] = torch.tensor(full[:-1])
            y[b, L:] = torch.tensor(full[L + 1:])
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, step / 20)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 25 == 0:
            print("copy warm-up step %d  loss %.4f" % (step, loss.item()), flush=True)


def evaluate(model, data, pad, tokens_per_batch):
    model.eval()
    tot, n = 0.0, 0
    with torch.no_grad():
        for b in batches(data, tokens_per_batch, random.Random(0)):
            x, y, _ = tensors(data, b, pad)
            logits = model(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                   ignore_index=-100, reduction="sum")
            tot += loss.item()
            n += (y != -100).sum().item()
    model.train()
    return tot / max(n, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data_dir")
    ap.add_argument("tools")
    ap.add_argument("merges")
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--steps", type=int, default=1800)
    ap.add_argument("--tokens-per-batch", type=int, default=2048)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--d", type=int, default=192)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--kv-heads", type=int, default=3)
    ap.add_argument("--ff", type=int, default=512)
    ap.add_argument("--ctx", type=int, default=384)
    ap.add_argument("--value-weight", type=float, default=1.0,
                    help="loss weight of the tokens of argument values (the copied slots) in training")
    ap.add_argument("--copy-pretrain", type=int, default=0,
                    help="steps of the pure copy task (copy_pretrain) before the home data")
    ap.add_argument("--copy-aux", type=int, default=0,
                    help="sequences of the auxiliary copy task (copy_batch) added to each step")
    ap.add_argument("--tie", action="store_true", help="output head tied to the token embeddings")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--init", help="start from this checkpoint's weights (same shape)")
    ap.add_argument("--call-format", choices=["hermes", "compact"], default="hermes",
                    help="tool-call framing of the answers (render.CALL_FORMAT)")
    ap.add_argument("--greedy-n", type=int, default=60,
                    help="at each evaluation, greedy answers to this many val cases, scored (0: none)")
    ap.add_argument("--end-at", help="S:E: linear decay from step S to the floor at step E, the last step")
    ap.add_argument("--stop-at", type=int, help="stop after this step (the schedule stays --steps long)")
    a = ap.parse_args()

    render.CALL_FORMAT = a.call_format
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    os.makedirs(a.out_dir, exist_ok=True)
    tools = json.load(open(a.tools))
    merges = [tuple(m) for m in json.load(open(a.merges))]
    tok = Tokenizer(merges)
    t0 = time.time()
    train, dropped = encode_split(os.path.join(a.data_dir, "train.jsonl"), tools, tok, a.ctx,
                                  value_weight=a.value_weight)
    val, _ = encode_split(os.path.join(a.data_dir, "val.jsonl"), tools, tok, a.ctx)
    with open(os.path.join(a.data_dir, "val.jsonl")) as f:
        val_rows = [json.loads(l) for l in f]
    ntok = sum(len(x[0]) for x in train)
    print("train: %d examples (%d over the context dropped), %d tokens; val %d; encoded in %.0f s"
          % (len(train), dropped, ntok, len(val), time.time() - t0), flush=True)

    cfg = {"vocab": len(tok.tokens), "d": a.d, "n_layer": a.layers, "n_head": a.heads,
           "n_kv": a.kv_heads, "ff": a.ff, "n_ctx": a.ctx}
    if a.tie:
        cfg["tie"] = True
    model = Model(cfg)
    if a.init:
        model.load_state_dict(torch.load(a.init)["model"])
    n_params = sum(p.numel() for p in model.parameters())
    print("model: %s, %.2f M parameters" % (json.dumps(cfg), n_params / 1e6), flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    nodecay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                             {"params": nodecay, "weight_decay": 0.0}], lr=a.lr, betas=(0.9, 0.98))
    pad = tok.special_id(render.ENDOFTEXT)
    normal = [i for i, t in enumerate(tok.types) if t == 1]

    # --end-at S:E (or a file OUT_DIR/END holding E, read at step S): from
    # step S the learning rate falls linearly from its value there to the
    # schedule's floor at step E, where the run ends. It lets a run on a
    # shared machine finish its decay by a deadline; the log records S:E so
    # that the run can be replayed with --end-at.
    end = [None]
    if a.end_at:
        s_, e_ = (int(v) for v in a.end_at.split(":"))
        end[0] = (s_, e_)

    def lr_at(step):
        if end[0] and step >= end[0][0]:
            s_, e_ = end[0]
            at_s = lr_cos(s_)
            return at_s + (a.lr * 0.05 - at_s) * min(1.0, (step - s_) / max(1, e_ - s_))
        return lr_cos(step)

    def lr_cos(step):
        if step < a.warmup:
            return a.lr * (step + 1) / a.warmup
        t = (step - a.warmup) / max(1, a.steps - a.warmup)
        return a.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))

    if a.copy_pretrain:
        copy_pretrain(model, opt, rng, a.copy_pretrain, normal, pad, a.lr)
    log = {"train": [], "val": [], "config": cfg, "params": n_params}
    best = float("inf")
    step, queue = 0, []
    t0 = time.time()
    run_loss, run_n = 0.0, 0
    last = min(a.steps, a.stop_at or a.steps)
    if end[0]:
        last = min(last, end[0][1])
        log["end_at"] = a.end_at
    stop_file = os.path.join(a.out_dir, "STOP")
    end_file = os.path.join(a.out_dir, "END")
    while step < last:
        if end[0] is None and os.path.exists(end_file):
            e_ = int(open(end_file).read().split()[0])
            end[0] = (step, max(step + 1, e_))
            last = min(last, end[0][1])
            log["end_at"] = "%d:%d" % end[0]
            print("step %d  end moved: --end-at %d:%d" % (step, end[0][0], end[0][1]), flush=True)
        if os.path.exists(stop_file):  # an operator's early stop: the best checkpoint so far stands
            print("step %d  stopped early (%s)" % (step, stop_file), flush=True)
            break
        if not queue:
            queue = batches(train, a.tokens_per_batch, rng)
        b = queue.pop()
        x, y, wt = tensors(train, b, pad)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        logits = model(x)
        if a.value_weight == 1.0:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100)
        else:
            tl = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100,
                                 reduction="none")
            loss = (tl * wt.reshape(-1)).sum() / (y != -100).sum()
        opt.zero_grad(set_to_none=True)
        if a.copy_aux:
            cx, cy = copy_batch(rng, a.copy_aux, normal, pad)
            cl = model(cx)
            loss = loss + F.cross_entropy(cl.reshape(-1, cl.shape[-1]), cy.reshape(-1), ignore_index=-100)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        run_loss += loss.item()
        run_n += 1
        if step % 50 == 0:
            log["train"].append([step, run_loss / run_n])
            print("step %d  loss %.4f  lr %.2e  %.0f s" % (step, run_loss / run_n, lr_at(step),
                                                         time.time() - t0), flush=True)
            run_loss, run_n = 0.0, 0
        if step % a.eval_every == 0 or step == last:
            vl = evaluate(model, val, pad, a.tokens_per_batch)
            log["val"].append([step, vl])
            print("step %d  val loss %.4f" % (step, vl), flush=True)
            if a.greedy_n:
                model.eval()
                sc = eval_torch.score(model, tok, tools, val_rows[:a.greedy_n], quiet=True)
                model.train()
                log.setdefault("greedy", []).append([step, sc])
                print("step %d  greedy on %d val: calls %d/%d  handoffs %d/%d  replies %d/%d  false handoffs %d/%d"
                      % (step, a.greedy_n, sc["call"][0], sc["call"][1], sc["handoff"][0], sc["handoff"][1],
                         sc["reply"][0], sc["reply"][1], sc["false_handoff"], sc["in"]), flush=True)
            if vl < best:
                best = vl
                torch.save({"config": cfg, "merges": [list(m) for m in merges],
                            "model": model.state_dict(), "step": step, "val_loss": vl},
                           os.path.join(a.out_dir, "model.pt"))
            log["wall_seconds"] = time.time() - t0
            with open(os.path.join(a.out_dir, "losses.json"), "w") as f:
                json.dump(log, f)
            plot.curves(os.path.join(a.out_dir, "losses.png"), log["train"], log["val"])
    print("done: best val loss %.4f, %.0f s" % (best, time.time() - t0), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
