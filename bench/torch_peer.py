#!/usr/bin/python3
"""The PyTorch peer of bench/memory-scale.sh: LoRA r=8 (alpha 16) on c_attn of a GPT-2-shaped model, batch 4,
sequence 128, AdamW on the LoRA tensors only, random frozen weights; plain torch, no transformers.

    /usr/bin/python3 bench/torch_peer.py gpt2 [--steps 7] [--threads 2]

Prints peak RSS (ru_maxrss of this process), the time to the end of step 1 and the steady step (median of steps
3..) in the same format as memory-scale.sh. Debian's python3-torch (1.13, OpenBLAS): use /usr/bin/python3.
"""
import argparse
import math
import resource
import statistics
import time

START = time.time()

import torch  # noqa: E402  (imported after START: its import is part of the set-up a user waits for)
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

SHAPES = {"gpt2": (12, 768, 12), "gpt2-medium": (24, 1024, 16), "gpt2-large": (36, 1280, 20),
          "gpt2-xl": (48, 1600, 25)}
VOCAB, POSITIONS = 50257, 1024


class LoraLinear(nn.Module):
    """A frozen Linear plus the trainable low-rank update scale * B(A(x)), as PEFT's LoRA (B starts at zero)."""

    def __init__(self, n_in, n_out, rank, alpha):
        super().__init__()
        self.base = nn.Linear(n_in, n_out)
        self.lora_a = nn.Linear(n_in, rank, bias=False)
        self.lora_b = nn.Linear(rank, n_out, bias=False)
        nn.init.kaiming_uniform_(self.lora_a.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_b.weight)
        self.scale = alpha / rank

    def forward(self, x):
        return self.base(x) + self.lora_b(self.lora_a(x)) * self.scale


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class Block(nn.Module):
    def __init__(self, e, heads, rank, alpha):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(e, eps=1e-5)
        self.c_attn = LoraLinear(e, 3 * e, rank, alpha)
        self.c_proj = nn.Linear(e, e)
        self.ln_2 = nn.LayerNorm(e, eps=1e-5)
        self.c_fc = nn.Linear(e, 4 * e)
        self.mlp_proj = nn.Linear(4 * e, e)

    def forward(self, x, mask):
        b, t, e = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(e, dim=2)
        q, k, v = (z.view(b, t, self.heads, e // self.heads).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(e // self.heads) + mask
        y = (F.softmax(att, dim=-1) @ v).transpose(1, 2).reshape(b, t, e)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(gelu_new(self.c_fc(self.ln_2(x))))


class Gpt2Lora(nn.Module):
    def __init__(self, n_layer, e, heads, rank=8, alpha=16):
        super().__init__()
        self.wte = nn.Embedding(VOCAB, e)
        self.wpe = nn.Embedding(POSITIONS, e)
        self.blocks = nn.ModuleList(Block(e, heads, rank, alpha) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(e, eps=1e-5)
        for name, p in self.named_parameters():  # GPT-2's initialisation, as bench/make_gpt2_checkpoint.py
            if "lora_" not in name and "ln_" not in name:
                nn.init.normal_(p, 0.0, 0.02) if p.dim() > 1 else nn.init.zeros_(p)
            p.requires_grad_(False)
        for blk in self.blocks:
            blk.c_attn.lora_a.weight.requires_grad_(True)
            blk.c_attn.lora_b.weight.requires_grad_(True)

    def forward(self, ids):
        t = ids.shape[1]
        mask = torch.full((t, t), float("-inf")).triu(1)
        x = self.wte(ids) + self.wpe(torch.arange(t))
        for blk in self.blocks:
            x = blk(x, mask)
        return self.ln_f(x) @ self.wte.weight.t()  # LM head tied to wte, as GPT-2's


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shape", choices=SHAPES)
    ap.add_argument("--steps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=128)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(42)
    n_layer, e, heads = SHAPES[args.shape]
    model = Gpt2Lora(n_layer, e, heads)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-4)
    tokens = torch.randint(0, VOCAB, (args.batch, args.seq + 1))
    setup = time.time() - START
    print(f"set-up done at {setup:.1f} s", flush=True)
    ends = []
    for _ in range(args.steps):
        logits = model(tokens[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), tokens[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ends.append(time.time() - START)
        print(f"step {len(ends)} done at {ends[-1]:.1f} s, loss {loss.item():.4f}", flush=True)
    dt = [b - a for a, b in zip(ends, ends[1:])]
    steady = statistics.median(dt[1:])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    tok = args.batch * args.seq
    print(f"torch {torch.__version__} {args.shape}: peak RSS {rss:.2f} GiB, set-up {setup:.1f} s, step 1 done at "
          f"{ends[0]:.1f} s, step 2 took {dt[0]:.2f} s, steady step {steady:.2f} s ({tok / steady:.0f} tokens/s), "
          f"loss {loss.item():.4f}, {args.steps} steps")


if __name__ == "__main__":
    main()
