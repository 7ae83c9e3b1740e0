"""Torch threads on the real model: LoRA training steps with 1 vs 2 threads, idle and busy.

    .venv/bin/python bench/threads/run.py            # ~4 min; appends a table to BENCHMARKS.md

"Busy" is another process spinning one core (a plain Python loop), as when a second job shares a
2-core machine. Each cell is its own process (threads are set before torch does any work), on
SmolLM2-135M-Instruct (Q4_1, dequantized) with ftlab's default LoRA (r 8, alpha 16, all linear),
batch 8 of the quickstart's reviews, 2 warm-up steps then 6 timed ones. Loss values are printed so
that 1 and 2 threads can be seen to compute the same thing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

STEP = r'''
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
from pathlib import Path
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer
from ftlab.data.encode import encode_for_training
from ftlab.data.generate import generators
from ftlab.data.stage import with_system
folder = sys.argv[2]
tok = AutoTokenizer.from_pretrained(folder)
model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
torch.manual_seed(0)  # before the adapters' init, so every cell trains the same weights
model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"))
rows = [encode_for_training(tok, with_system(e, ""), 96) for e in generators.get("sentiment")(n=64, split="train", seed=0)]
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
def step(batch):
    width = max(len(ids) for ids, _, _ in batch)
    ids = torch.tensor([r[0] + [tok.pad_token_id] * (width - len(r[0])) for r in batch])
    labels = torch.tensor([[t if m else -100 for t, m in zip(r[0], r[1])] + [-100] * (width - len(r[0])) for r in batch])
    attn = torch.tensor([[1] * len(r[0]) + [0] * (width - len(r[0])) for r in batch])
    loss = model(input_ids=ids, attention_mask=attn, labels=labels).loss
    loss.backward(); opt.step(); opt.zero_grad()
    return loss.item(), int(attn.sum())
for i in range(2):
    step(rows[i * 8:(i + 1) * 8])
start, tokens, losses = time.perf_counter(), 0, []
for i in range(2, 8):
    loss, n = step(rows[i * 8:(i + 1) * 8]); tokens += n; losses.append(round(loss, 4))
print(json.dumps({"tokens_per_s": tokens / (time.perf_counter() - start), "losses": losses}))
'''


def cell(threads: int, busy: bool, folder: str) -> dict:
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        out = subprocess.run([sys.executable, "-c", STEP, str(threads), folder], capture_output=True, text=True,
                             check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    finally:
        if spinner:
            spinner.kill()
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from machine import machine_line

    from ftlab.models import gguf

    path = gguf.resolve("smollm2", ROOT)
    folder = str(gguf.convert(path, gguf.digest(path)))
    results = {}
    for busy in (False, True):
        for threads in (1, 2):
            results[busy, threads] = r = cell(threads, busy, folder)
            print(f"busy={busy} threads={threads}: {r['tokens_per_s']:.0f} tokens/s, losses {r['losses']}", flush=True)
    same = all(results[b, 1]["losses"] == results[b, 2]["losses"] for b in (False, True))
    close = max(abs(x - y) for b in (False, True) for x, y in zip(results[b, 1]["losses"], results[b, 2]["losses"]))
    lines = ["", "## Torch threads on the real model (bench/threads)", "", machine_line(), "",
             "LoRA steps on SmolLM2-135M-Instruct (Q4_1, dequantized), batch 8 of the quickstart's reviews, "
             "tokens/s over 6 steps after 2 warm-up steps; each cell its own process. Busy: another process spins one core.", "",
             "| machine state | 1 thread | 2 threads | 2 / 1 |", "|---|---|---|---|"]
    for busy in (False, True):
        one, two = results[busy, 1]["tokens_per_s"], results[busy, 2]["tokens_per_s"]
        lines.append(f"| {'busy (1 core held)' if busy else 'idle'} | {one:.0f} | {two:.0f} | {two / one:.2f}x |")
    lines += ["", f"Losses identical between 1 and 2 threads: {'yes' if same else f'no: largest difference {close:.4f} (the reduction order of 1 vs 2 threads)'}.",
              "ftlab's default is the allocation (2 here); on a machine shared with another job, FTLAB_THREADS=1 (or the spec's threads: 1)."]
    with open(ROOT / "BENCHMARKS.md", "a") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
