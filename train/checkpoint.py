"""Checkpoints that survive crashes: one folder per epoch, written atomically.

``SAVE_DIR/checkpoints/epoch-0005/`` holds ``model.params`` (the network),
``trainer.states`` (optimizer states, its update count and so the learning-rate
position) and ``meta.json`` (epoch, iteration, seed, RNG states, metrics). A
checkpoint is written into a temporary folder, every file fsynced, then renamed
into place, so a crash at any moment leaves the previous checkpoints whole and
never a half-written one under a final name (an older run's folder of the same
epoch is renamed away whole first, and put back if the new one cannot be).
``best.json`` names the epoch with the best validation top-1 (its folder is never
pruned); the last ``keep`` checkpoints are kept.
"""
import contextlib
import fcntl
import json
import os
import re
import shutil
import socket
import tempfile
import time

__all__ = ['CheckpointError', 'FolderInUse', 'save', 'latest', 'load_meta', 'list_checkpoints',
           'best', 'atomic_write_text', 'publish_files', 'first_line', 'exclusive']

_NAME = re.compile(r'^epoch-(\d{4,})$')


class CheckpointError(RuntimeError):
    """A checkpoint could not be written or read; the message names the path."""


class FolderInUse(CheckpointError):
    """Another live process holds the save folder; the message names it and the holder."""


LOCK_NAME = '.lock'


@contextlib.contextmanager
def exclusive(save_dir):
    """Hold ``save_dir`` for this process: one training run per folder.

    An advisory lock (``flock``) on SAVE_DIR/.lock, which also records who holds
    it (pid, host, start time). The kernel releases it when the holder exits in
    any way, SIGKILL included, so a killed run never leaves the folder stuck.
    Raises :class:`FolderInUse` naming the folder and the holder.
    """
    os.makedirs(save_dir, exist_ok=True)
    path = os.path.join(save_dir, LOCK_NAME)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode('utf-8', 'replace').strip()
            raise FolderInUse('%s is in use by another training run (%s); wait for it to end, '
                              'stop it, or give another --save-dir'
                              % (save_dir, holder or 'holder unknown')) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, ('process %d on %s, since %s\n' % (
            os.getpid(), socket.gethostname(), time.strftime('%Y-%m-%d %H:%M:%S'))).encode(), 0)
        yield path
    finally:
        os.close(fd)        # releases the lock; the file stays (deleting it would race)


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` through a temporary file, fsync and rename."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path) + '.')
    try:
        with os.fdopen(fd, 'w') as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(folder)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def list_checkpoints(save_dir):
    """``[(epoch, folder)]`` of the complete checkpoints, oldest first."""
    root = os.path.join(save_dir, 'checkpoints')
    found = []
    if os.path.isdir(root):
        for name in os.listdir(root):
            match = _NAME.match(name)
            if match and os.path.isfile(os.path.join(root, name, 'meta.json')):
                found.append((int(match.group(1)), os.path.join(root, name)))
    return sorted(found)


def latest(save_dir):
    """The folder of the newest complete checkpoint, or None."""
    found = list_checkpoints(save_dir)
    return found[-1][1] if found else None


def best(save_dir):
    """``best.json`` as a dict (epoch, folder, top1), or None."""
    path = os.path.join(save_dir, 'best.json')
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def load_meta(folder):
    """The ``meta.json`` of a checkpoint folder."""
    try:
        with open(os.path.join(folder, 'meta.json')) as handle:
            return json.load(handle)
    except (OSError, ValueError) as err:
        raise CheckpointError('%s: cannot read meta.json (%s)' % (folder, err)) from None


def save(save_dir, epoch, write_files, meta, keep=3, top1=None):
    """Write checkpoint ``epoch``: ``write_files(folder)`` writes the model and trainer files.

    Raises :class:`CheckpointError` naming the folder if anything fails (disk
    full, no permission, an MXNet write error); on that or an interrupt
    (KeyboardInterrupt, SystemExit) the temporary folder is removed and the
    earlier checkpoints are untouched. Returns the folder.
    """
    root = os.path.join(save_dir, 'checkpoints')
    final = os.path.join(root, 'epoch-%04d' % epoch)
    tmp = aside = None
    try:
        os.makedirs(root, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=root, prefix='.epoch-%04d.' % epoch)
        write_files(tmp)
        with open(os.path.join(tmp, 'meta.json'), 'w') as handle:
            json.dump(meta, handle, indent=1, sort_keys=True)
        for name in os.listdir(tmp):
            with open(os.path.join(tmp, name), 'rb') as handle:
                os.fsync(handle.fileno())
        _fsync_dir(tmp)
        if os.path.exists(final):   # an older run's folder of the same epoch: renamed away
            aside = os.path.join(root, '.epoch-%04d.replaced' % epoch)   # whole, then deleted
            shutil.rmtree(aside, ignore_errors=True)    # left by a crash at this very step
            os.rename(final, aside)
        os.rename(tmp, final)
        _fsync_dir(root)
    except BaseException as err:
        if tmp is not None and os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        if aside is not None and os.path.isdir(aside) and not os.path.exists(final):
            os.rename(aside, final)
        if not isinstance(err, Exception):
            raise
        raise CheckpointError('could not write checkpoint %s: %s; the previous checkpoint (%s) '
                              'is intact' % (final, _cause(err, root), latest(save_dir))) from None
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    previous_best = best(save_dir)
    if top1 is not None and (previous_best is None or top1 > previous_best['top1']):
        atomic_write_text(os.path.join(save_dir, 'best.json'),
                          json.dumps({'epoch': epoch, 'folder': final, 'top1': top1}))
    _prune(save_dir, keep)
    return final


def first_line(err):
    """The first line of an error's message (MXNet's carry a C++ stack trace after it)."""
    lines = [line for line in str(err).splitlines() if line.strip()]
    reason = next((line for line in lines if 'Check failed' in line or 'Error' in line),
                  lines[0] if lines else type(err).__name__)
    return reason.strip()


def _cause(err, folder):
    """Why a write into ``folder`` failed, with the space left there (MXNet's own writers
    only say "FileStream.Write incomplete" when a disk is full)."""
    try:
        free = '%.1f MB free on its file system' % (shutil.disk_usage(folder).free / 2 ** 20)
    except OSError:
        free = 'free space unknown'
    return '%s (%s)' % (first_line(err), free)


def publish_files(folder, write_files):
    """``write_files(tmp)`` writes files into a temporary folder inside ``folder``; each is
    then fsynced and renamed into ``folder``, so no file appears half-written under its
    final name. On any failure the temporary folder is removed, the files already in
    ``folder`` are untouched, and :class:`CheckpointError` names ``folder`` and the cause.
    Returns the names published."""
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=folder, prefix='.publish.')
        write_files(tmp)
        names = sorted(os.listdir(tmp))
        for name in names:
            with open(os.path.join(tmp, name), 'rb') as handle:
                os.fsync(handle.fileno())
        for name in names:
            os.replace(os.path.join(tmp, name), os.path.join(folder, name))
        _fsync_dir(folder)
        return names
    except Exception as err:
        raise CheckpointError('could not write into %s: %s' % (folder, _cause(err, folder))) \
            from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _prune(save_dir, keep):
    """Delete all but the last ``keep`` and the best checkpoint, and what crashes left."""
    protected = (best(save_dir) or {}).get('folder')
    found = list_checkpoints(save_dir)
    for _, folder in found[:-keep] if keep > 0 else []:
        if folder != protected:
            shutil.rmtree(folder, ignore_errors=True)
    root = os.path.join(save_dir, 'checkpoints')
    for name in os.listdir(root):
        if name.startswith('.epoch-'):      # a temporary or renamed-away folder
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
