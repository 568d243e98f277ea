"""Learning-rate schedule: linear warm-up, then step, poly or cosine decay.

A plain picklable class with no imports: with a distributed kvstore the
optimizer, and so this schedule, is unpickled inside MXNet's parameter servers,
where GluonCV (whose ``LRScheduler`` this mirrors) cannot be imported.
"""
import bisect
import math

__all__ = ['WarmupSchedule', 'make_lr_scheduler']


class WarmupSchedule:
    """``schedule(i)``: the learning rate after ``i`` updates.

    Linear from ``warmup_lr`` to ``lr`` over the ``warmup`` first iterations
    (``lr * i / (warmup - 1)`` when ``warmup_lr`` is 0), then with ``t`` running
    from 0 to 1 over the remaining ``total - warmup`` iterations: ``cosine``
    ``lr * (1 + cos(pi t)) / 2``, ``poly`` ``lr * (1 - t) ** power``, or ``step``
    ``lr * decay ** k`` after the k-th of ``steps`` (iterations counted after warm-up).
    """

    def __init__(self, mode, lr, total, warmup=0, warmup_lr=0., decay=0.1, steps=(), power=2):
        self.mode, self.lr, self.total, self.warmup = mode, lr, total, warmup
        self.warmup_lr, self.decay, self.steps, self.power = warmup_lr, decay, sorted(steps), power
        self.base_lr = lr          # MXNet's optimizer sets this; the schedule keeps its own lr

    def __call__(self, num_update):
        if num_update < self.warmup:
            if self.warmup == 1:
                return self.lr
            return self.warmup_lr + (self.lr - self.warmup_lr) * num_update / (self.warmup - 1)
        done, span = num_update - self.warmup, max(self.total - self.warmup - 1, 1)
        t = min(done, span) / span
        if self.mode == 'cosine':
            return self.lr * (1 + math.cos(math.pi * t)) / 2
        if self.mode == 'poly':
            return self.lr * (1 - t) ** self.power
        return self.lr * self.decay ** bisect.bisect_right(self.steps, done)


def make_lr_scheduler(mode, lr, num_epochs, iters_per_epoch, warmup_epochs=0, warmup_lr=0.,
                      lr_decay=0.1, lr_decay_epochs=(), power=2):
    """The schedule of ``--lr-mode``, with epochs turned into iterations."""
    if mode not in ('step', 'poly', 'cosine'):
        raise ValueError("--lr-mode must be step, poly or cosine, got %r" % mode)
    if not 0 <= warmup_epochs < num_epochs:
        raise ValueError('--warmup-epochs (%s) must be in [0, --num-epochs=%d)'
                         % (warmup_epochs, num_epochs))
    steps = [(e - warmup_epochs) * iters_per_epoch for e in lr_decay_epochs]
    return WarmupSchedule(mode, lr, num_epochs * iters_per_epoch,
                          warmup_epochs * iters_per_epoch, warmup_lr, lr_decay, steps, power)
