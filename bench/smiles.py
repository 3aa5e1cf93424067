"""``python -m bench smiles``: the next-token draw of SMILES generation against plain PyTorch.

S. One sampling step of 10,000 sequences at once (the rows of ``fastgen sample smiles -n 10000``):
   logits [10000, V] float32, V the vocabulary of the MOSES sample (27 tokens), temperature
   0.95, drawn 100 times per timing (sequences of up to 100 tokens). Implementations:

   * ``torch eager: multinomial(softmax(logits / T))`` -- the reference of the target, as a
     PyTorch user writes it: a division, a softmax, and ``torch.multinomial`` (which builds a
     cumulative sum per row and searches it);
   * ``torch eager: Gumbel-max`` -- ``argmax(logits / T - log(-log(u)))`` with ``torch.rand``:
     the same algorithm as fastgen's, unfused (four passes and two temporaries);
   * ``torch.compile: Gumbel-max`` -- inductor's fusion of that function;
   * ``fastgen sample_categorical`` -- ``torch.ops.fastgen.sample_categorical``: temperature,
     Philox uniforms, the Gumbel transform and the argmax in one pass over each row.

   Target (SMILES issue): fastgen at least 3x faster per step than the multinomial reference.
   The logits are fixed random numbers with the spread of a trained model's (normal, sd 3): the
   time of a draw does not depend on their values.
"""
from __future__ import annotations

from .common import (DEFAULT_COOLDOWN_S, format_table, format_targets, load_warning, LoadMonitor,
                     print_target_summary, register, RESULTS_DIR, results_document, start_torch_suite,
                     summarize, target, time_interleaved, write_json)

ROWS, QUICK_ROWS = 10_000, 512
VOCABULARY = 27
TEMPERATURE = 0.95
STEPS_PER_TIMING, QUICK_STEPS = 100, 5
DEFAULT_REPEATS, QUICK_REPEATS = 15, 2
SAMPLER_MIN_SPEEDUP = 3.0
REFERENCE = "torch eager: multinomial(softmax(logits / T))"


def multinomial_step(logits, temperature):
    import torch

    return torch.multinomial(torch.softmax(logits / temperature, -1), 1)


def gumbel_step(logits, temperature):
    import torch

    u = torch.rand_like(logits)
    return torch.argmax(logits / temperature - torch.log(-torch.log(u)), dim=-1)


def sampler_scenario(rows: int, steps: int, repeats: int, cooldown: float) -> dict:
    import torch

    from fastgen import Generator
    from fastgen.torch.ops import sample_categorical

    logits = torch.randn(rows, VOCABULARY, generator=torch.Generator().manual_seed(0)) * 3.0
    compiled = torch.compile(gumbel_step)
    gen = Generator(0)

    def loop(draw):
        def run():
            for _ in range(steps):
                draw()
        return run

    fns = {REFERENCE: loop(lambda: multinomial_step(logits, TEMPERATURE)),
           "torch eager: Gumbel-max": loop(lambda: gumbel_step(logits, TEMPERATURE)),
           "torch.compile: Gumbel-max": loop(lambda: compiled(logits, TEMPERATURE)),
           "fastgen sample_categorical": loop(lambda: sample_categorical(logits, TEMPERATURE, None, gen))}
    for fn in fns.values():  # compile and warm up outside the timing
        fn()
    with LoadMonitor() as mon:
        times = time_interleaved(fns, repeats, cooldown=cooldown)
    summary = summarize(times, floor=None, reference=REFERENCE)
    title = (f"\nS. next-token draw, {rows} rows x {VOCABULARY} tokens, float32, temperature {TEMPERATURE}, "
             f"{steps} steps per timing (median of {repeats})")
    print(format_table(title, summary, floor=None, reference=REFERENCE, reference_label="multinomial"))
    per_step_ms = {name: 1e3 * row["median_s"] / steps for name, row in summary.items()}
    print("  per step: " + ", ".join(f"{name} {ms:.3f} ms" for name, ms in per_step_ms.items()))
    warning = load_warning(mon.as_dict())
    if warning:
        print("  " + warning)
    targets = [target(f"sample_categorical ({rows} x {VOCABULARY}): speed-up per step vs multinomial(softmax)",
                      summary["fastgen sample_categorical"]["speedup_vs_reference"], ">=", SAMPLER_MIN_SPEEDUP, "x")]
    print(format_targets(targets))
    return {"shape": [rows, VOCABULARY], "temperature": TEMPERATURE, "steps_per_timing": steps, "summary": summary,
            "per_step_ms": per_step_ms, "targets": targets, "load": mon.as_dict(),
            "torch_threads": torch.get_num_threads()}


def run_suite(args) -> dict:
    quick = bool(getattr(args, "quick", False))
    repeats = args.repeats or (QUICK_REPEATS if quick else DEFAULT_REPEATS)
    cooldown = DEFAULT_COOLDOWN_S if getattr(args, "cooldown", None) is None else args.cooldown
    env = start_torch_suite("fastgen SMILES sampling (CPU) vs PyTorch", quick)
    rows = QUICK_ROWS if quick else ROWS
    steps = QUICK_STEPS if quick else STEPS_PER_TIMING
    scenarios = {f"S_sample_categorical_{rows}x{VOCABULARY}_float32": sampler_scenario(rows, steps, repeats, cooldown)}
    document = results_document("smiles", env, {"quick": quick, "repeats": repeats, "steps_per_timing": steps},
                                scenarios)
    print_target_summary(scenarios)
    return document


@register("smiles", "SMILES generation: the fused next-token draw vs torch.multinomial(softmax) and Gumbel-max "
                    "(eager, torch.compile)", results_file="smiles_cpu.json")
def main(args) -> int:
    document = run_suite(args)
    if getattr(args, "json", False):
        path = write_json(document, getattr(args, "out", None) or RESULTS_DIR / "smiles_cpu.json")
        print(f"\nwrote {path}")
    return 0
