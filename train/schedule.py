"""Learning-rate schedule: linear warm-up, then step, poly or cosine decay (GluonCV API)."""
from gluoncv.utils import LRScheduler, LRSequential

__all__ = ['make_lr_scheduler']


def make_lr_scheduler(mode, lr, num_epochs, iters_per_epoch, warmup_epochs=0, warmup_lr=0.,
                      lr_decay=0.1, lr_decay_epochs=(), power=2):
    """The learning rate as a function of the iteration (``scheduler(i)``).

    Linear from ``warmup_lr`` to ``lr`` over ``warmup_epochs``, then ``mode``:
    ``step`` (times ``lr_decay`` at each of ``lr_decay_epochs``), ``poly``
    (``lr * (1 - t)^power``) or ``cosine`` (``lr * (1 + cos(pi t)) / 2``), with
    ``t`` the fraction of the post-warm-up iterations done. Built with GluonCV's
    ``LRScheduler`` / ``LRSequential`` (the current keyword API).
    """
    if mode not in ('step', 'poly', 'cosine'):
        raise ValueError("--lr-mode must be step, poly or cosine, got %r" % mode)
    if not 0 <= warmup_epochs < num_epochs:
        raise ValueError('--warmup-epochs (%s) must be in [0, --num-epochs=%d)'
                         % (warmup_epochs, num_epochs))
    steps = [e - warmup_epochs for e in lr_decay_epochs]
    return LRSequential([
        LRScheduler('linear', base_lr=warmup_lr, target_lr=lr, nepochs=warmup_epochs,
                    iters_per_epoch=iters_per_epoch),
        LRScheduler(mode, base_lr=lr, target_lr=0, nepochs=num_epochs - warmup_epochs,
                    iters_per_epoch=iters_per_epoch, step_epoch=steps, step_factor=lr_decay,
                    power=power),
    ])
