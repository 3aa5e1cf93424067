"""Stopping a diverging trainer with its last finite parameters.

A learning rate (or weight decay, momentum) too large for the data makes SGD on an RBM grow
its weights geometrically: ``weight_decay > 2 / learning_rate`` alone multiplies them by
``|1 - learning_rate * weight_decay| > 1`` every batch, to 1e55 and then infinity within an
epoch. Every trainer therefore runs each pass through :func:`guarded_pass`: the arrays it
updates are copied first (one copy of the parameters per pass, small against a pass over
the data), and a pass that leaves a parameter non-finite or above :data:`DIVERGED` in magnitude
(no RBM fitted to data in [0, 1] comes near: a weight of 1e6 saturates every unit it touches)
is undone before the error is raised, so the model keeps the parameters of the pass before.
"""
from __future__ import annotations

DIVERGED = 1e6


def exceeds(arrays, bound: float = DIVERGED) -> bool:
    """Whether any array holds a NaN, an infinity or a value above ``bound`` in magnitude
    (NumPy or CuPy arrays; two reductions each, no temporaries)."""
    for a in arrays:
        if a is None or a.size == 0:
            continue
        low, high = float(a.min()), float(a.max())  # NaN propagates through both reductions
        if not (-bound <= low and high <= bound):
            return True
    return False


def guarded_pass(run, checked, restored=(), *, message: str, bound: float = DIVERGED, diverged=None) -> None:
    """``run()``, then raise FloatingPointError(message) with every array of ``checked`` and
    ``restored`` put back as it was, if the pass diverged: ``diverged()`` when given, else
    :func:`exceeds` on ``checked``. A pass that raises is undone too, and its error re-raised."""
    arrays = [a for a in (*checked, *restored) if a is not None]
    saved = [a.copy() for a in arrays]

    def undo():
        for a, s in zip(arrays, saved):
            a[...] = s

    try:
        run()
    except BaseException:  # a pass stopped half-way is undone as well
        undo()
        raise
    if diverged() if diverged is not None else exceeds(checked, bound):
        undo()
        raise FloatingPointError(message)
