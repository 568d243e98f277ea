"""ImageNet-style data: RecordIO iterators with the reference recipe, image folders, batches.

Two normalisation conventions, so the released checkpoints score as published:

- ``'gluon'``: mean (123.68, 116.779, 103.939), std (58.393, 57.12, 57.375),
  validation resize to ``ceil(size / crop_ratio)`` then center crop;
- ``'symbol'``: mean (124, 117, 104), scale 0.0167 (std 1/0.0167), bicubic resize.

Every source is read through :func:`batches`, which yields ``(data, label,
valid)`` where ``valid`` is the number of real images in the batch, so a padded
last batch never counts an image twice. Open a fresh validation iterator for
each pass (see :func:`batches` for why).
"""
import functools
import math
import os
from collections import namedtuple

from .recordio_check import DataError, check_recordio

__all__ = ['Normalization', 'NORMALIZATIONS', 'validation_resize', 'check_once', 'train_iter',
           'val_iter', 'image_folder_loader', 'batches', 'equal_batches', 'index_beside',
           'open_source', 'DataError']

Normalization = namedtuple('Normalization', ['mean', 'std', 'inter_method'])

NORMALIZATIONS = {
    'gluon': Normalization((123.68, 116.779, 103.939), (58.393, 57.12, 57.375), 1),
    'symbol': Normalization((124., 117., 104.), (1 / 0.0167,) * 3, 2),   # bicubic
}


def _normalization(convention):
    try:
        return NORMALIZATIONS[convention]
    except KeyError:
        raise ValueError('unknown normalisation %r; use one of %s'
                         % (convention, ', '.join(NORMALIZATIONS))) from None


def validation_resize(input_size, crop_ratio=0.875):
    """Shorter side before the center crop: ``ceil(input_size / crop_ratio)`` (224 -> 256)."""
    if not 0 < crop_ratio <= 1:
        raise ValueError('crop_ratio must be in (0, 1], got %r' % crop_ratio)
    return int(math.ceil(input_size / crop_ratio))


def _index(idx):
    """``path_imgidx`` only when there is one: MXNet reads None as a file named "None"."""
    return {} if idx is None else {'path_imgidx': idx}


def _norm_kwargs(norm):
    return dict(mean_r=norm.mean[0], mean_g=norm.mean[1], mean_b=norm.mean[2],
                std_r=norm.std[0], std_g=norm.std[1], std_b=norm.std[2])


def check_once(rec, idx, num_classes, decode, skip_bad=False):
    """:func:`check_recordio`, once per file version: the loops open a fresh iterator every
    epoch, and a scan of ImageNet's 1.28M records need not be repeated. One scan serves
    every ``num_classes`` (the labels it saw are checked against it; only a bad one makes
    a second scan, for the record's place). The last 16 scans are remembered (a version
    is the files' size and modification time)."""
    versions = tuple((os.path.getsize(p), os.path.getmtime(p)) if p and os.path.isfile(p)
                     else None for p in (rec, idx))
    info = _scan(rec, idx, decode, skip_bad, versions)
    if num_classes is not None and not all(label == int(label) and 0 <= label < num_classes
                                           for label in info.labels):
        check_recordio(rec, idx, num_classes=num_classes, decode=decode,
                       skip_bad=skip_bad)                   # raises, naming the record
    return info


@functools.lru_cache(maxsize=16)
def _scan(rec, idx, decode, skip_bad, versions):
    return check_recordio(rec, idx, decode=decode, skip_bad=skip_bad)


def index_beside(rec, idx=None):
    """``idx``, or the ``.idx`` file beside ``rec`` when there is one (else None)."""
    if idx is None and rec is not None and os.path.isfile(os.path.splitext(rec)[0] + '.idx'):
        return os.path.splitext(rec)[0] + '.idx'
    return idx


def _counted(count, iterator, rec):
    """Attach the number of images a scan found (``num_images``) and the file read
    (``path``) to an iterator."""
    iterator.num_images, iterator.path = count, rec
    return iterator


def train_iter(rec, idx, batch_size, input_size=224, num_classes=None, num_parts=1,
               part_index=0, threads=4, seed=0, convention='gluon', jitter=0.4, lighting=0.1,
               check=True, validate=False, min_area=0.08):
    """Training ``ImageRecordIter``: random-resized crop (area ``min_area``-1, default 0.08,
    aspect 3/4-4/3),
    mirror, brightness/contrast/saturation jitter, PCA lighting, normalisation, shuffle.

    Each of ``num_parts`` workers reads part ``part_index``. Batches are
    (batch_size, 3, input_size, input_size). The files are checked first
    (:func:`check_recordio`, ``validate=True`` also decodes every image) unless
    ``check=False``.
    """
    import mxnet as mx
    count = check_once(rec, idx, num_classes, validate).count if check else None
    norm = _normalization(convention)
    return _counted(count // num_parts if count else None, mx.io.ImageRecordIter(
        path_imgrec=rec, data_shape=(3, input_size, input_size), **_index(idx),
        batch_size=batch_size, shuffle=True, seed=seed, seed_aug=seed, preprocess_threads=threads,
        rand_mirror=True, random_resized_crop=True, min_random_area=min_area, max_random_area=1.,
        min_aspect_ratio=3. / 4., max_aspect_ratio=4. / 3., brightness=jitter, contrast=jitter,
        saturation=jitter, pca_noise=lighting, num_parts=num_parts, part_index=part_index,
        inter_method=norm.inter_method, **_norm_kwargs(norm)), rec)


def val_iter(rec, idx, batch_size, input_size=224, crop_ratio=0.875, num_classes=None,
             threads=4, convention='gluon', num_parts=1, part_index=0, check=True,
             validate=False):
    """Validation ``ImageRecordIter``: shorter side to ``ceil(input_size / crop_ratio)``,
    center crop, normalisation; the last batch is padded (``batch.pad``)."""
    import mxnet as mx
    count = check_once(rec, idx, num_classes, validate).count if check else None
    norm = _normalization(convention)
    return _counted(count if num_parts == 1 else None, mx.io.ImageRecordIter(
        path_imgrec=rec, data_shape=(3, input_size, input_size), **_index(idx),
        batch_size=batch_size, shuffle=False, rand_crop=False, rand_mirror=False,
        resize=validation_resize(input_size, crop_ratio), preprocess_threads=threads,
        round_batch=True, num_parts=num_parts, part_index=part_index,
        inter_method=norm.inter_method, **_norm_kwargs(norm)), rec)


def image_folder_loader(root, batch_size, train, input_size=224, crop_ratio=0.875,
                        workers=0, convention='gluon', jitter=0.4, lighting=0.1, min_area=0.08):
    """A ``gluon.data.DataLoader`` over ``root/<class>/<image>`` with the same recipe.

    Raises :class:`DataError` for a missing folder, no class folders or an
    empty class folder.
    """
    from mxnet.gluon.data import DataLoader
    from mxnet.gluon.data.vision import ImageFolderDataset, transforms
    from .im2rec import list_image_folder
    list_image_folder(root)     # the checks, with clear errors
    norm = _normalization(convention)
    normalize = transforms.Normalize([m / 255 for m in norm.mean], [s / 255 for s in norm.std])
    if train:
        steps = [transforms.RandomResizedCrop(input_size, scale=(min_area, 1.),
                                              ratio=(3. / 4., 4. / 3.)),
                 transforms.RandomFlipLeftRight(),
                 transforms.RandomColorJitter(brightness=jitter, contrast=jitter,
                                              saturation=jitter),
                 transforms.RandomLighting(lighting)]
    else:
        steps = [transforms.Resize(validation_resize(input_size, crop_ratio), keep_ratio=True,
                                   interpolation=norm.inter_method),
                 transforms.CenterCrop(input_size)]
    transform = transforms.Compose(steps + [transforms.ToTensor(), normalize])
    dataset = ImageFolderDataset(os.path.expanduser(root)).transform_first(transform)
    return DataLoader(dataset, batch_size=batch_size, shuffle=train, num_workers=workers,
                      last_batch='discard' if train else 'keep')


def batches(source):
    """``(data, label, valid)`` for each batch of a DataIter or a DataLoader, one pass.

    ``valid`` counts the real images: ``batch_size - pad`` for a padded
    ``ImageRecordIter`` batch, and never more than the ``num_images`` the
    pre-check counted; the padding rows are sliced off ``data`` and ``label``.
    The iterator is not reset: in MXNet 1.9.1 ``reset()`` on a fresh
    ``ImageRecordIter`` drops a batch, and after a padded epoch the next one
    skips the wrapped images, so open a fresh iterator for each exact pass.
    """
    if not hasattr(source, 'provide_data'):       # a gluon DataLoader
        for data, label in source:
            yield data, label, data.shape[0]
        return
    remaining = getattr(source, 'num_images', None)
    for batch in _read(source):
        data, label = batch.data[0], batch.label[0]
        valid = data.shape[0] - (batch.pad or 0)
        if remaining is not None:
            valid = min(valid, remaining)
            remaining -= valid
        if valid < data.shape[0]:
            data, label = data[:valid], label[:valid]
        if valid > 0:
            yield data, label, valid


def _read(source):
    """The batches of ``source``; a record MXNet cannot decode mid-pass (one the up-front
    scan could not tell from a good one) raises :class:`DataError` naming the file and
    how far the pass got, instead of OpenCV's words alone."""
    if not hasattr(source, 'provide_data'):     # a DataLoader names its own files
        yield from source
        return
    from mxnet.base import MXNetError
    iterator, read = iter(source), 0
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except MXNetError as err:
            cause = next((line.strip() for line in str(err).splitlines() if 'error' in line),
                         type(err).__name__)
            raise DataError('%s: MXNet could not decode an image of batch %d (%s); the %d '
                            'batches before it were read. --validate decodes every image '
                            'before training and names the record; with --skip-bad-records '
                            'too, such records are left out' % (getattr(source, 'path',
                                                                        'the data'),
                                                                read + 1, cause, read)) from None
        read += 1
        yield batch


def equal_batches(open_source, steps):
    """``(data, label, batch size)`` for exactly ``steps`` full batches of fresh passes of
    ``open_source()`` (a DataIter or DataLoader factory).

    What distributed workers need: each takes the same number of same-size steps.
    A pass's last batch keeps the iterator's wrap-around padding (those images are
    trained on twice), and a shard with fewer batches than ``steps`` starts again.
    """
    taken = 0
    while True:
        empty = True
        for item in _read(open_source()):
            data, label = (item.data[0], item.label[0]) if hasattr(item, 'data') else item
            empty = False
            yield data, label, data.shape[0]
            taken += 1
            if taken == steps:
                return
        if empty:
            raise DataError('this worker\'s share of the training data yielded no batch')


def open_source(rec=None, idx=None, folder=None, train=False, batch_size=32, input_size=224,
                crop_ratio=0.875, num_classes=None, threads=4, convention='gluon', num_parts=1,
                part_index=0, seed=0, validate=False, min_area=0.08):
    """The iterator of a .rec file (its .idx found beside it) or of an image folder.

    Exactly one of ``rec`` and ``folder`` is given. Training sources shuffle
    and augment; validation sources resize and center-crop.
    """
    if (rec is None) == (folder is None):
        raise ValueError('give either a .rec file or an image folder, not %s'
                         % ('both' if rec else 'neither'))
    if folder is not None:
        return image_folder_loader(folder, batch_size, train, input_size=input_size,
                                   crop_ratio=crop_ratio, convention=convention,
                                   min_area=min_area)
    idx = index_beside(rec, idx)
    if train:
        return train_iter(rec, idx, batch_size, input_size, num_classes, num_parts, part_index,
                          threads, seed, convention, validate=validate, min_area=min_area)
    return val_iter(rec, idx, batch_size, input_size, crop_ratio, num_classes, threads,
                    convention, num_parts, part_index, validate=validate)
