"""Training targets: label smoothing and mixup, on (N,) integer labels."""

__all__ = ['one_hot_targets', 'mixup', 'draw_lambda']


def one_hot_targets(F, labels, classes, smoothing=0.):
    """(N, classes) targets: ``1 - smoothing + smoothing / classes`` on the label,
    ``smoothing / classes`` elsewhere (``smoothing=0``: one-hot)."""
    off = smoothing / classes
    return F.one_hot(labels, classes, on_value=1 - smoothing + off, off_value=off)


def mixup(data, targets, lam):
    """Mix each example with the batch reversed: ``lam * x + (1 - lam) * x[::-1]``, and the
    (N, classes) targets the same way."""
    return (lam * data + (1 - lam) * data[::-1],
            lam * targets + (1 - lam) * targets[::-1])


def draw_lambda(rng, alpha):
    """A mixup coefficient from Beta(alpha, alpha) with the numpy random state ``rng``."""
    return float(rng.beta(alpha, alpha))
