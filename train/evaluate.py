"""Evaluation: single center-crop top-1 / top-5 of a network over a data source."""
import time

import mxnet as mx
import numpy as np

from ..utils.data import DataError, batches
from .stopping import never

__all__ = ['topk_correct', 'num_images', 'score']


def topk_correct(logits, labels, k=5):
    """``(top-1 hits, top-k hits)`` of numpy ``logits`` (N, C) for integer ``labels`` (N,)."""
    labels = labels.astype(int).reshape(-1, 1)
    ranked = np.argsort(-logits, axis=1)[:, :k]
    return int((ranked[:, 0:1] == labels).sum()), int((ranked == labels).any(axis=1).sum())


def num_images(source):
    """Images in a source when known (DataLoader, or a checked .rec), else None."""
    dataset = getattr(source, '_dataset', None)
    return len(dataset) if dataset is not None else getattr(source, 'num_images', None)


def score(net, source, ctx=(mx.cpu(),), dtype='float32', progress=True, check=never):
    """Top-1 / top-5 of ``net`` over ``source``, every image once; ``check()`` is
    called before each batch and may raise to stop (by default nothing stops it).

    Returns ``{'images', 'top1', 'top5', 'images_per_s'}`` (accuracies in [0, 1]).
    Each batch is split over the devices ``ctx``.
    """
    from tqdm import tqdm
    images = top1 = top5 = 0
    bar = tqdm(total=num_images(source), unit='img', desc='scoring', disable=not progress)
    start = time.time()
    for data, label, valid in batches(source):
        check()
        parts = mx.gluon.utils.split_and_load(data, list(ctx), even_split=False)
        logits = np.concatenate([net(x.astype(dtype, copy=False)).astype('float32').asnumpy()
                                 for x in parts])
        hit1, hit5 = topk_correct(logits, label.asnumpy())
        images, top1, top5 = images + valid, top1 + hit1, top5 + hit5
        bar.update(valid)
        bar.set_postfix(top1='%.4f' % (top1 / images))
    bar.close()
    if images == 0:
        raise DataError('the data source yielded no images')
    elapsed = time.time() - start
    return {'images': images, 'top1': top1 / images, 'top5': top5 / images,
            'images_per_s': images / elapsed}
