"""``octconv-im2rec``: pack a folder-per-class image tree into RecordIO files.

``root/<class>/<image>`` becomes ``PREFIX_train.lst/.rec/.idx`` and
``PREFIX_val.lst/.rec/.idx`` (or a single ``PREFIX.lst/.rec/.idx`` with
``--val-ratio 0``). Classes are numbered in sorted folder order; the class
names are written to ``PREFIX_classes.txt``. Images are optionally resized
(shorter side), re-encoded as JPEG with ``--quality``, by ``--threads`` workers,
with a progress bar.
"""
import argparse
import os
import random
import sys
from concurrent.futures import ThreadPoolExecutor

from .recordio_check import DataError

__all__ = ['IMAGE_EXTENSIONS', 'list_image_folder', 'pack', 'main']

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.ppm', '.pgm', '.tif', '.tiff', '.webp')


def list_image_folder(root):
    """``(classes, [(path, label)])`` of a folder-per-class tree, sorted.

    Raises :class:`DataError` when ``root`` is missing, has no class folder, a
    class folder holds no image, or an image file is empty.
    """
    if not os.path.isdir(root):
        raise DataError('%s: image folder not found' % root)
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if not classes:
        raise DataError('%s: no class folders (expected root/<class>/<image>)' % root)
    items = []
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        images = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
        if not images:
            raise DataError('%s: class folder %r holds no image (%s)'
                            % (root, name, ', '.join(IMAGE_EXTENSIONS)))
        for image in images:
            if os.path.getsize(os.path.join(folder, image)) == 0:
                raise DataError('%s: the image file is empty (0 bytes)'
                                % os.path.join(folder, image))
        items.extend((os.path.join(folder, f), label) for f in images)
    return classes, items


def _encode(path, resize, quality):
    import cv2
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise DataError('%s: the image cannot be decoded' % path)
    if resize:
        height, width = image.shape[:2]
        scale = resize / min(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC if scale > 1
                           else cv2.INTER_AREA)
    ok, buffer = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise DataError('%s: JPEG encoding failed' % path)
    return buffer.tobytes()


def _write(prefix, items, resize, quality, threads, desc, written):
    """Write ``prefix.lst/.rec/.idx.tmp`` for ``[(path, label)]``, each temporary file's
    final name appended to ``written`` as soon as the file exists."""
    import mxnet as mx
    from tqdm import tqdm
    written.extend(prefix + ext for ext in ('.lst', '.idx', '.rec'))
    with open(prefix + '.lst.tmp', 'w') as lst:
        for key, (path, label) in enumerate(items):
            lst.write('%d\t%d\t%s\n' % (key, label, path))
    writer = mx.recordio.MXIndexedRecordIO(prefix + '.idx.tmp', prefix + '.rec.tmp', 'w')
    try:
        with ThreadPoolExecutor(max(1, threads)) as pool:
            encoded = pool.map(lambda item: _encode(item[0], resize, quality), items)
            for key, ((_, label), data) in enumerate(tqdm(zip(items, encoded), total=len(items),
                                                          desc=desc, unit='img')):
                header = mx.recordio.IRHeader(0, float(label), key, 0)
                writer.write_idx(key, mx.recordio.pack(header, data))
    finally:
        writer.close()
    return prefix + '.rec'


def pack(root, prefix, val_ratio=0.2, resize=0, quality=95, threads=4, seed=0):
    """Pack ``root`` into RecordIO files next to ``prefix``; returns ``{split: .rec path}``.

    The split is stratified: each class gives ``round(val_ratio * n)`` of its
    ``n`` images (at least one when ``val_ratio > 0``) to validation, chosen with
    ``seed``. Every file is written under a temporary name and renamed into place
    only when all are complete; on any failure the temporary files are removed and
    no earlier file of the same names is touched.
    """
    classes, items = list_image_folder(root)
    if not 0 <= val_ratio < 1:
        raise ValueError('val_ratio must be in [0, 1), got %r' % val_ratio)
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    if val_ratio == 0:
        splits = {'all': (prefix, items, 'packing')}
    else:
        rng = random.Random(seed)
        train, val = [], []
        for label in range(len(classes)):
            members = [item for item in items if item[1] == label]
            rng.shuffle(members)
            cut = max(1, round(val_ratio * len(members)))
            val.extend(members[:cut])
            train.extend(members[cut:])
        rng.shuffle(train)
        splits = {'train': (prefix + '_train', train, 'train'),
                  'val': (prefix + '_val', sorted(val, key=lambda i: (i[1], i[0])), 'val')}
    written = [prefix + '_classes.txt']
    try:
        with open(prefix + '_classes.txt.tmp', 'w') as handle:
            handle.write('\n'.join(classes) + '\n')
        result = {split: _write(name, members, resize, quality, threads, desc, written)
                  for split, (name, members, desc) in splits.items()}
    except BaseException:
        for path in written:
            if os.path.exists(path + '.tmp'):
                os.remove(path + '.tmp')
        raise
    for path in written:
        os.replace(path + '.tmp', path)
    return result


def main(argv=None):
    """Pack a folder-per-class image tree into .lst/.rec/.idx files."""
    parser = argparse.ArgumentParser(prog='octconv-im2rec', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('root', help='image folder: root/<class>/<image>')
    parser.add_argument('prefix', help='output prefix, e.g. data/imagenet')
    parser.add_argument('--val-ratio', type=float, default=0.2,
                        help='fraction of each class for validation; 0 = one file (default 0.2)')
    parser.add_argument('--resize', type=int, default=0,
                        help='resize the shorter side to this many pixels (default: keep)')
    parser.add_argument('--quality', type=int, default=95, help='JPEG quality (default 95)')
    parser.add_argument('--threads', type=int, default=os.cpu_count() or 1,
                        help='encoding threads')
    parser.add_argument('--seed', type=int, default=0, help='seed of the train/val split')
    args = parser.parse_args(argv)
    try:
        written = pack(args.root, args.prefix, args.val_ratio, args.resize, args.quality,
                       args.threads, args.seed)
    except (DataError, ValueError, OSError) as err:
        print('octconv-im2rec: error: %s' % err, file=sys.stderr)
        return 2
    for split, path in written.items():
        print('%s: %s' % (split, path))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
