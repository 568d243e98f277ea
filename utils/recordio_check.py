"""Check RecordIO image files before MXNet's C++ iterator reads them.

``mx.io.ImageRecordIter`` takes the whole process down on a bad file (a missing
.idx segfaults, a truncated record or a wrong magic number aborts, a payload
that is not an image raises SIGFPE). :func:`check_recordio` scans the framing
in Python first, and that every payload starts with the signature of an image
format OpenCV decodes, and raises :class:`DataError` naming the file, the record
index and the byte offset of the first problem.

Format: each record is ``uint32 magic 0xced7230a``, ``uint32 lrecord`` (upper 3
bits: continuation flag, lower 29: length), the payload, and zero padding to 4
bytes. An image payload starts with the 24-byte header ``IfQQ`` (flag, label,
id, id2); ``flag > 0`` means ``flag`` float labels follow; then the encoded image.
"""
import os
import struct

__all__ = ['DataError', 'RecordInfo', 'check_recordio', 'read_index', 'MAGIC']

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
    """What a scan found: number of records, labels seen, byte size."""

    def __init__(self, path, count, labels, size):
        self.path, self.count, self.labels, self.size = path, count, labels, size

    def __repr__(self):
        return 'RecordInfo(%r, %d records, %d labels)' % (self.path, self.count, len(self.labels))


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


def check_recordio(rec_path, idx_path=None, num_classes=None, decode=False):
    """Scan ``rec_path`` (and ``idx_path``) and return a :class:`RecordInfo`.

    Checks that the files exist, every record's framing and image header, that
    labels are whole numbers in ``[0, num_classes)`` when ``num_classes`` is
    given, that the index points at record starts, and with ``decode=True``
    that every image decodes. Raises :class:`DataError` at the first problem.
    """
    for path, what in ((rec_path, '.rec'), (idx_path, '.idx')):
        if path is not None and not os.path.isfile(path):
            raise DataError('%s: %s %s' % (path, what, 'is not a regular file (a directory, '
                                                       'FIFO or device)' if os.path.exists(path)
                                           else 'file not found'))
    size = os.path.getsize(rec_path)
    if size == 0:
        raise DataError('%s: the file is empty' % rec_path)
    starts, labels = set(), set()
    count = 0
    with open(rec_path, 'rb') as handle:
        while True:
            record = _read_payload(handle, rec_path, count, size)
            if record is None:
                break
            start, payload = record
            label = _check_image_record(payload, rec_path, count, start, num_classes, decode)
            labels.add(label)
            starts.add(start)
            count += 1
    if idx_path is not None:
        seen = {}
        for key, offset in read_index(idx_path, size).items():
            if offset not in starts:
                raise DataError('%s: record %d points at byte %d, which is not the start of a '
                                'record in %s' % (idx_path, key, offset, rec_path))
            if offset in seen:
                raise DataError('%s: records %d and %d both point at byte %d of %s; each key '
                                'must name its own record' % (idx_path, seen[offset], key,
                                                               offset, rec_path))
            seen[offset] = key
    return RecordInfo(rec_path, count, labels, size)


def _check_image_record(payload, path, index, offset, num_classes, decode):
    where = '%s, record %d at byte %d' % (path, index, offset)
    if len(payload) < _HEADER.size:
        raise DataError('%s: %d bytes, shorter than the 24-byte image header'
                        % (where, len(payload)))
    flag, label, _, _ = _HEADER.unpack_from(payload)
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
    if len(payload) == body:
        raise DataError('%s: the record holds no image' % where)
    image = payload[body:body + 12]
    webp = image[:4] == b'RIFF' and image[8:12] == b'WEBP'
    if not (image.startswith(_IMAGE_SIGNATURES) or webp):
        raise DataError('%s: the payload is not an encoded image (it starts with %r); MXNet\'s '
                        'iterator would crash on it' % (where, image[:8]))
    if decode:
        import cv2
        import numpy as np
        image = cv2.imdecode(np.frombuffer(payload[body:], dtype=np.uint8), cv2.IMREAD_COLOR)
        if image is None or image.size == 0:
            raise DataError('%s: the image cannot be decoded' % where)
    return label
