"""What the measurement scripts of ``studies/`` share: their command line, their exit on a
failed step, and where they keep their runs (``results/<study>/``)."""
import argparse
import datetime
import json
import os
import subprocess
import sys

from .checkpoint import atomic_write_text

__all__ = ['study_parser', 'run_study', 'keep_run']


def study_parser(doc, results):
    """The arguments every study takes, described by ``doc``: ``--out`` (default: a file in
    the folder ``results`` named by :func:`keep_run`), ``--batch-sizes`` (1 and 16) and
    ``--threads`` (2)."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', help='the JSON lines file (default: results/%s/'
                        'DATE_VENDOR-fFAMILYmMODEL.jsonl)' % os.path.basename(results))
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 16])
    parser.add_argument('--threads', type=int, default=2)
    return parser


def run_study(study, args):
    """``study(args)``; 2 if an install, export, compile or run fails, with one line on
    standard error naming it (a child's own message is above it)."""
    try:
        return study(args)
    except (OSError, subprocess.CalledProcessError, RuntimeError) as err:
        print('error: %s' % err, file=sys.stderr)
        return 2


def keep_run(rows, out, results, cpu):
    """Write ``rows`` as JSON lines, atomically, to ``out`` or by default to
    ``results/DATE_VENDOR-fFAMILYmMODEL.jsonl`` (the CPU record ``cpu`` of
    :func:`~octconv.train.machine.cpu_description`); prints and returns the path."""
    vendor = {'GenuineIntel': 'intel', 'AuthenticAMD': 'amd'}.get(cpu['vendor'], 'cpu')
    out = out or os.path.join(results, '%s_%s-f%sm%s.jsonl' % (
        datetime.date.today().isoformat(), vendor, cpu['family'], cpu['model']))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    atomic_write_text(out, ''.join(json.dumps(row) + '\n' for row in rows))
    print('written: %s' % out)
    return out
