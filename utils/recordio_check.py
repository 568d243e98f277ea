"""Check RecordIO image files before MXNet's C++ iterator reads them.

``mx.io.ImageRecordIter`` takes the whole process down on a bad file (a missing
.idx segfaults, a truncated record or a wrong magic number aborts, a payload
that is not an image raises SIGFPE, a PNG cut short aborts in libpng, a JPEG cut
off before its frame header fails a batch). :func:`check_recordio` scans the
framing in Python first, that every payload starts with the signature of an image
format OpenCV decodes, and that a JPEG's or PNG's structure is whole as far as
MXNet's decoder needs it; it raises :class:`DataError` naming the file, the record
(its index, id and byte offset) and the problem, or with ``skip_bad=True`` lists
the records whose image is bad instead (:attr:`RecordInfo.bad`).

Format: each record is ``uint32 magic 0xced7230a``, ``uint32 lrecord`` (upper 3
bits: continuation flag, lower 29: length), the payload, and zero padding to 4
bytes. An image payload starts with the 24-byte header ``IfQQ`` (flag, label,
id, id2); ``flag > 0`` means ``flag`` float labels follow; then the encoded image.
"""
import os
import struct
from collections import namedtuple

__all__ = ['DataError', 'RecordInfo', 'BadRecord', 'check_recordio', 'read_index',
           'image_problem', 'write_without', 'MAGIC']

MAGIC = 0xced7230a
_HEADER = struct.Struct('<IfQQ')
# Leading bytes of the encodings OpenCV decodes: JPEG, PNG, BMP, TIFF (both byte orders),
# WebP (RIFF....WEBP), JPEG 2000, and the binary/ASCII PNM formats.
_IMAGE_SIGNATURES = (b'\xff\xd8\xff', b'\x89PNG\r\n\x1a\n', b'BM', b'II*\x00', b'MM\x00*',
                     b'\x00\x00\x00\x0cjP  ', b'\xff\x4f\xff\x51', b'P1', b'P2', b'P3', b'P4',
                     b'P5', b'P6')
_LENGTH_MASK = (1 << 29) - 1


class DataError(ValueError):
    """A data file that cannot be used; the message names the file and the place."""


class RecordInfo:
    """What a scan found: number of usable records, labels seen, byte size, and ``bad``,
    the records left out (``skip_bad=True``) as :class:`BadRecord` tuples."""

    def __init__(self, path, count, labels, size, bad=()):
        self.path, self.count, self.labels, self.size = path, count, labels, size
        self.bad = tuple(bad)

    def __repr__(self):
        return 'RecordInfo(%r, %d records, %d labels, %d bad)' % (
            self.path, self.count, len(self.labels), len(self.bad))


BadRecord = namedtuple('BadRecord', ['index', 'id', 'offset', 'size', 'reason'])
BadRecord.__doc__ = """A record whose image is unusable: its ``index`` in the file, the ``id``
of its header (im2rec's key), where it starts and how many bytes it takes (framing
included), and why it is bad."""


def read_index(idx_path, rec_size):
    """``{key: offset}`` of an .idx file; every offset must lie inside the .rec file."""
    offsets = {}
    with open(idx_path) as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            parts = line.split('\t')
            try:
                key, offset = int(parts[0]), int(parts[1])
            except (IndexError, ValueError):
                raise DataError('%s, line %d: expected "key<TAB>offset", got %r'
                                % (idx_path, line_no, line.rstrip('\n'))) from None
            if not 0 <= offset < rec_size:
                raise DataError('%s, line %d: offset %d of record %d is outside the .rec file '
                                '(%d bytes)' % (idx_path, line_no, offset, key, rec_size))
            offsets[key] = offset
    if not offsets:
        raise DataError('%s: the index is empty' % idx_path)
    return offsets


def _read_payload(handle, path, index, size):
    """The payload of the record at the handle's position (parts joined); None at the end."""
    start = handle.tell()
    chunks = []
    while True:
        offset = handle.tell()
        head = handle.read(8)
        if not head and not chunks:
            return None
        if len(head) < 8:
            raise DataError('%s, record %d at byte %d: truncated record header'
                            % (path, index, offset))
        magic, lrecord = struct.unpack('<II', head)
        if magic != MAGIC:
            raise DataError('%s, record %d at byte %d: wrong magic number 0x%08x (expected '
                            '0x%08x): not a RecordIO file or a corrupt one'
                            % (path, index, offset, magic, MAGIC))
        flag, length = lrecord >> 29, lrecord & _LENGTH_MASK
        if offset + 8 + length > size:
            raise DataError('%s, record %d at byte %d: the record needs %d bytes but the file '
                            'ends after %d: truncated file'
                            % (path, index, offset, length, size - offset - 8))
        chunks.append(handle.read(length))
        handle.seek((4 - length % 4) % 4, os.SEEK_CUR)
        if flag in (0, 3):          # whole record, or the last part of a split one
            return start, (struct.pack('<I', MAGIC)).join(chunks)
        if flag not in (1, 2):
            raise DataError('%s, record %d at byte %d: invalid continuation flag %d'
                            % (path, index, offset, flag))


def check_recordio(rec_path, idx_path=None, num_classes=None, decode=False, skip_bad=False):
    """Scan ``rec_path`` (and ``idx_path``) and return a :class:`RecordInfo`.

    Checks that the files exist, every record's framing and image header, that
    labels are whole numbers in ``[0, num_classes)`` when ``num_classes`` is
    given, that the index points at record starts, that each image is whole as far
    as MXNet's decoder needs (:func:`image_problem`) and, with ``decode=True``,
    that it decodes. Raises :class:`DataError` at the first problem; with
    ``skip_bad=True`` a record whose image is bad is listed in ``RecordInfo.bad``
    instead (framing, index and label problems still raise).
    """
    for path, what in ((rec_path, '.rec'), (idx_path, '.idx')):
        if path is not None and not os.path.isfile(path):
            raise DataError('%s: %s %s' % (path, what, 'is not a regular file (a directory, '
                                                       'FIFO or device)' if os.path.exists(path)
                                           else 'file not found'))
    size = os.path.getsize(rec_path)
    if size == 0:
        raise DataError('%s: the file is empty' % rec_path)
    offsets = read_index(idx_path, size) if idx_path is not None else {}
    keys = {offset: key for key, offset in offsets.items()}
    starts, labels, bad = set(), set(), []
    count = 0
    with open(rec_path, 'rb') as handle:
        while True:
            record = _read_payload(handle, rec_path, count, size)
            if record is None:
                break
            start, payload = record
            label, record_id, image = _image_record(payload, rec_path, count, start, num_classes)
            key = keys.get(start, record_id)
            problem = image_problem(image, decode)
            if problem is None:
                labels.add(label)
            elif skip_bad:
                bad.append(BadRecord(count, key, start, handle.tell() - start, problem))
            else:
                raise DataError('%s, record %d (key %d) at byte %d: %s'
                                % (rec_path, count, key, start, problem))
            starts.add(start)
            count += 1
    seen = {}
    for key, offset in offsets.items():
        if offset not in starts:
            raise DataError('%s: record %d points at byte %d, which is not the start of a '
                            'record in %s' % (idx_path, key, offset, rec_path))
        if offset in seen:
            raise DataError('%s: records %d and %d both point at byte %d of %s; each key '
                            'must name its own record' % (idx_path, seen[offset], key,
                                                           offset, rec_path))
        seen[offset] = key
    return RecordInfo(rec_path, count - len(bad), labels, size, bad)


def _image_record(payload, path, index, offset, num_classes):
    """``(label, id, encoded image bytes)`` of a record's payload; DataError for a header or
    label that cannot be used."""
    where = '%s, record %d at byte %d' % (path, index, offset)
    if len(payload) < _HEADER.size:
        raise DataError('%s: %d bytes, shorter than the 24-byte image header'
                        % (where, len(payload)))
    flag, label, record_id, _ = _HEADER.unpack_from(payload)
    body = _HEADER.size
    if flag > 0:
        if len(payload) < body + 4 * flag:
            raise DataError('%s: header announces %d labels but the record is too short'
                            % (where, flag))
        label = struct.unpack_from('<f', payload, body)[0]
        body += 4 * flag
    if num_classes is not None and (label != int(label) or not 0 <= label < num_classes):
        raise DataError('%s: label %g is not a class index in [0, %d)'
                        % (where, label, num_classes))
    return label, record_id, payload[body:]


_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}    # SOF0..SOF15
_PNG = b'\x89PNG\r\n\x1a\n'


def image_problem(image, decode=False):
    """Why MXNet's image decoder cannot use ``image`` (encoded bytes), or None.

    Without ``decode`` this reads structure only, in microseconds: the signature of
    a format OpenCV decodes; for a JPEG, its segments up to a whole frame header
    (MXNet decodes a JPEG whose image data is cut short, filling the rest with gray,
    but fails on one cut off before that header); for a PNG, its chunks up to IEND
    (libpng aborts the process on a cut-off PNG). ``decode=True`` also decodes it
    with MXNet's own decoder.
    """
    if not image:
        return 'the record holds no image'
    head = image[:12]
    if not (head.startswith(_IMAGE_SIGNATURES) or head[:4] == b'RIFF' and head[8:12] == b'WEBP'):
        return ('the payload is not an encoded image (it starts with %r); MXNet\'s iterator '
                'would crash on it' % head[:8])
    problem = (_jpeg_problem(image) if image.startswith(b'\xff\xd8') else
               _png_problem(image) if image.startswith(_PNG) else None)
    if problem is None and decode:
        import mxnet as mx
        try:            # waited for: a decode error must not surface at a later sync
            mx.image.imdecode(image).wait_to_read()
        except mx.base.MXNetError:
            problem = 'the image cannot be decoded'
    return problem


def _jpeg_problem(image):
    position, size = 2, len(image)
    while True:
        while position + 1 < size and image[position] == image[position + 1] == 0xFF:
            position += 1                                   # fill bytes before a marker
        if position + 2 > size:
            return ('the JPEG is cut off before its frame header (it ends after %d bytes)'
                    % size)
        if image[position] != 0xFF:
            return 'the JPEG is corrupt: byte %d is not a marker' % position
        marker = image[position + 1]
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:      # markers without a length
            position += 2
            continue
        if marker in (0xD9, 0xDA):
            return 'the JPEG has no frame header before its %s' % (
                'end' if marker == 0xD9 else 'image data')
        end = position + 2 + int.from_bytes(image[position + 2:position + 4], 'big')
        if position + 4 > size or end > size:
            return ('the JPEG is cut off inside its header (it ends after %d bytes, inside '
                    'a segment that runs to byte %d)' % (size, end))
        if marker in _JPEG_FRAMES:
            return None
        position = end


def _png_problem(image):
    position, size = len(_PNG), len(image)
    while position + 8 <= size:
        end = position + 12 + int.from_bytes(image[position:position + 4], 'big')
        chunk = image[position + 4:position + 8]
        if end > size:
            return ('the PNG is cut off inside its %s chunk (it ends after %d bytes, the chunk '
                    'runs to byte %d)' % (chunk.decode('latin-1'), size, end))
        if chunk == b'IEND':
            return None
        position = end
    return 'the PNG is cut off before its IEND chunk (it ends after %d bytes)' % size


def write_without(rec_path, idx_path, bad, prefix):
    """Copy ``rec_path`` to ``PREFIX.rec`` leaving out the records ``bad`` (from
    :func:`check_recordio` with ``skip_bad=True``), and its index, with the offsets
    moved, to ``PREFIX.idx`` (when ``idx_path`` is given). The bytes are copied in
    the kernel (``copy_file_range``) and the files renamed into place when whole.
    Returns ``(rec, idx or None)``.
    """
    removed = sorted(bad, key=lambda record: record.offset)
    out_rec, out_idx = prefix + '.rec', prefix + '.idx' if idx_path else None
    part = '.%d.part' % os.getpid()        # workers sharing a folder each write their own
    parts = [out_rec + part] + ([out_idx + part] if out_idx else [])
    try:
        with open(rec_path, 'rb') as source, open(parts[0], 'wb') as target:
            position = 0
            for start, end in [(r.offset, r.offset + r.size) for r in removed]:
                _copy_range(source, target, position, start - position)
                position = end
            _copy_range(source, target, position, os.path.getsize(rec_path) - position)
            os.fsync(target.fileno())
        if out_idx:
            gone = {r.offset for r in removed}
            with open(parts[1], 'w') as handle:
                for key, offset in sorted(read_index(idx_path,
                                                     os.path.getsize(rec_path)).items()):
                    if offset not in gone:
                        shift = sum(r.size for r in removed if r.offset < offset)
                        handle.write('%d\t%d\n' % (key, offset - shift))
                handle.flush()
                os.fsync(handle.fileno())
        for path in parts:
            os.replace(path, path[:-len(part)])
    finally:
        for path in parts:
            if os.path.exists(path):
                os.remove(path)
    return out_rec, out_idx


def _copy_range(source, target, offset, count):
    """``count`` bytes of ``source`` from ``offset`` appended to ``target``."""
    while count > 0:
        try:
            done = os.copy_file_range(source.fileno(), target.fileno(), count, offset)
        except OSError:         # a file system without copy_file_range: through memory
            source.seek(offset)
            done = os.write(target.fileno(), source.read(min(count, 1 << 24)))
        if done == 0:
            raise DataError('%s: ends before byte %d while copying it' % (source.name,
                                                                           offset + count))
        offset, count = offset + done, count - done
