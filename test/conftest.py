"""Shared fixtures: the checkpoint manifests shipped in test/data."""
import json
import pathlib

DATA = pathlib.Path(__file__).parent / 'data'


def manifests(api):
    """``[(file name, manifest dict)]`` for ``api`` ('symbol' or 'gluon')."""
    return [(path.name, json.loads(path.read_text()))
            for path in sorted(DATA.glob('%s_*.json' % api))]
