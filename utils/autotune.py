"""Pick the fastest of several equivalent runnables by timing them where they will run.

Which inference graph of an octave network is fastest depends on the CPU and the batch
size: merging an octave layer's two paths into one convolution over concatenated
inputs saved 6-20% at ratio 0.125 on an AVX-512 AMD EPYC (Zen 4) and cost 7-15% at
batch 1 on an AVX2 one (Zen 3), where oneDNN's concatenation of blocked maps is slow,
while saving up to 6% there at batch 16. :func:`fastest` times the candidates on this
machine, with its threads and its input shape, and keeps the fastest, as cuDNN's
autotuning picks a convolution algorithm.

Shared machines are noisy (on 2 virtual cores the median of 100 runs was 1.4x the
fastest).
Noise only ever adds time, so each candidate's figure is its fastest run, taken over
rounds that interleave the candidates, so that a slow stretch of the machine falls
on all of them.
"""
import time

__all__ = ['fastest']


def fastest(runners, budget_seconds=1.0, min_rounds=5, max_rounds=50, warmup=2):
    """The index of the fastest callable in ``runners`` and each one's fastest time.

    ``runners``: callables that each run one complete, synchronous pass (for an MXNet
    block: forward, then ``wait_to_read``). Each is first run ``warmup`` times
    untimed (memory planning, kernel creation); then all are timed once per round,
    in turn, for at least ``min_rounds`` and at most ``max_rounds`` rounds, as many
    as fit in about ``budget_seconds`` per candidate. Returns ``(index, seconds)``:
    ``seconds[i]`` is the fastest run of ``runners[i]``; ``index`` its minimum (the
    first, on a tie).
    """
    if not runners:
        raise ValueError('fastest: no candidates to time')
    if min_rounds < 1 or max_rounds < min_rounds:
        raise ValueError('fastest: rounds must satisfy 1 <= min_rounds (%d) <= max_rounds '
                         '(%d)' % (min_rounds, max_rounds))
    best = [float('inf')] * len(runners)
    rounds, spent = 0, 0.
    for run in runners:
        for _ in range(warmup):
            run()
    while rounds < min_rounds or (rounds < max_rounds and spent < budget_seconds):
        for i, run in enumerate(runners):
            start = time.perf_counter()
            run()
            elapsed = time.perf_counter() - start
            best[i] = min(best[i], elapsed)
            spent += elapsed / len(runners)
        rounds += 1
    return best.index(min(best)), best
