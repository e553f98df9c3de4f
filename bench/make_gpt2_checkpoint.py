#!/usr/bin/env python3
"""Writes a random-weight Hugging Face GPT-2 checkpoint (config.json + safetensors) of a named shape.

Used by bench/memory-scale.sh; the checkpoints are large, so write them to a temporary directory and never commit
them. Weights follow GPT-2's initialisation (normal(0, 0.02), residual projections scaled by 1/sqrt(2 n_layer),
LayerNorm weights 1, biases 0). Checkpoints above --max-shard-bytes (Hugging Face's default, 5 GB) are written
sharded with model.safetensors.index.json, as save_pretrained does. Tensors are streamed one at a time, so memory
stays at one tensor.

    python3 bench/make_gpt2_checkpoint.py gpt2-large /tmp/ckpt/gpt2-large
"""
import argparse
import json
import os
import struct

import numpy as np

SHAPES = {  # n_layer, n_embd, n_head
    "gpt2": (12, 768, 12),
    "gpt2-medium": (24, 1024, 16),
    "gpt2-large": (36, 1280, 20),
    "gpt2-xl": (48, 1600, 25),
}
VOCAB, POSITIONS = 50257, 1024


def tensors(n_layer, e):
    yield "transformer.wte.weight", (VOCAB, e), "normal"
    yield "transformer.wpe.weight", (POSITIONS, e), "normal"
    for i in range(n_layer):
        h = f"transformer.h.{i}."
        yield h + "ln_1.weight", (e,), "one"
        yield h + "ln_1.bias", (e,), "zero"
        yield h + "attn.c_attn.weight", (e, 3 * e), "normal"
        yield h + "attn.c_attn.bias", (3 * e,), "zero"
        yield h + "attn.c_proj.weight", (e, e), "residual"
        yield h + "attn.c_proj.bias", (e,), "zero"
        yield h + "ln_2.weight", (e,), "one"
        yield h + "ln_2.bias", (e,), "zero"
        yield h + "mlp.c_fc.weight", (e, 4 * e), "normal"
        yield h + "mlp.c_fc.bias", (4 * e,), "zero"
        yield h + "mlp.c_proj.weight", (4 * e, e), "residual"
        yield h + "mlp.c_proj.bias", (e,), "zero"
    yield "transformer.ln_f.weight", (e,), "one"
    yield "transformer.ln_f.bias", (e,), "zero"


def write_shard(path, entries, rng, n_layer, dtype):
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    width = 2 if dtype == "BF16" else 4
    for name, shape, _ in entries:
        n = int(np.prod(shape)) * width
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for name, shape, kind in entries:
            if kind == "one":
                a = np.ones(shape, np.float32)
            elif kind == "zero":
                a = np.zeros(shape, np.float32)
            else:
                std = 0.02 / (np.sqrt(2 * n_layer) if kind == "residual" else 1)
                a = (rng.standard_normal(shape, dtype=np.float32) * np.float32(std))
            if dtype == "BF16":
                a = (a.view(np.uint32) >> 16).astype(np.uint16)  # truncation is fine for random weights
            f.write(a.tobytes())
    os.replace(tmp, path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("shape", choices=sorted(SHAPES))
    p.add_argument("out")
    p.add_argument("--max-shard-bytes", type=int, default=5_000_000_000)
    p.add_argument("--dtype", choices=["F32", "BF16"], default="F32")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    n_layer, e, n_head = SHAPES[a.shape]
    os.makedirs(a.out, exist_ok=True)
    config = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": VOCAB,
              "n_positions": POSITIONS, "n_ctx": POSITIONS, "n_embd": e, "n_layer": n_layer, "n_head": n_head,
              "initializer_range": 0.02, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new"}
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    width = 2 if a.dtype == "BF16" else 4
    shards, cur, size, total = [], [], 0, 0
    for entry in tensors(n_layer, e):
        n = int(np.prod(entry[1])) * width
        if cur and size + n > a.max_shard_bytes:
            shards.append(cur)
            cur, size = [], 0
        cur.append(entry)
        size += n
        total += n
    shards.append(cur)
    rng = np.random.default_rng(a.seed)
    if len(shards) == 1:
        write_shard(os.path.join(a.out, "model.safetensors"), shards[0], rng, n_layer, a.dtype)
        return
    weight_map = {}
    for k, s in enumerate(shards):
        name = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        write_shard(os.path.join(a.out, name), s, rng, n_layer, a.dtype)
        weight_map.update({t[0]: name for t in s})
    with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


if __name__ == "__main__":
    main()
