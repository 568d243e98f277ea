"""``octconv-plot-ablation``: top-1 accuracy against GFLOPs, one line per network.

Reads a CSV with the columns ``model, ratio, top1, top5, gflops`` (one row per
network and ratio, ratio 0 (or -1) for the baseline) and draws each network as a
line through its ratios, every point labelled with its ratio, as the paper's
ablation figure. Without ``--csv`` it plots the paper's table A with GFLOPs
from the counter.
"""
import csv
import sys

__all__ = ['COLUMNS', 'read_results', 'table_a_results', 'plot', 'main']

COLUMNS = ('model', 'ratio', 'top1', 'top5', 'gflops')


def read_results(path):
    """Rows of ``path`` as dicts with float ratio/top1/top5/gflops.

    Raises ``ValueError`` naming the file, and the line and column of a bad value.
    """
    with open(path, newline='') as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError('%s: missing column(s) %s; need %s'
                             % (path, ', '.join(missing), ', '.join(COLUMNS)))
        rows = []
        for line, row in enumerate(reader, start=2):
            parsed = {'model': row['model']}
            for column in COLUMNS[1:]:
                try:
                    parsed[column] = float(row[column])
                except (TypeError, ValueError):
                    raise ValueError('%s, line %d: column %s is %r, not a number'
                                     % (path, line, column, row[column])) from None
            rows.append(parsed)
    if not rows:
        raise ValueError('%s: no results' % path)
    return rows


def table_a_results():
    """The paper's table A with GFLOPs counted on 1x3x224x224 (ratio 0 = baseline)."""
    from ..utils.flops import count_block
    from ..symbol.released import ABLATION
    from .models import build_model
    return [{'model': row.label, 'ratio': row.ratio, 'top1': row.top1, 'top5': row.top5,
             'gflops': count_block(build_model('symbol', row.network, row.depth, row.ratio),
                                   (1, 3, 224, 224)).flops / 1e9}
            for row in ABLATION]


def plot(rows, path, title='ImageNet top-1 against FLOPs'):
    """Write the figure for ``rows`` (see :func:`read_results`) to the PNG ``path``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    networks = {}
    for row in rows:
        networks.setdefault(row['model'], []).append(row)
    fig, ax = plt.subplots(figsize=(9, 6), dpi=120)
    for model, points in networks.items():
        points.sort(key=lambda r: r['gflops'])
        ax.plot([p['gflops'] for p in points], [p['top1'] for p in points], marker='o',
                label=model)
        for p in points:
            ax.annotate('base' if p['ratio'] <= 0 else '%g' % p['ratio'],
                        (p['gflops'], p['top1']), textcoords='offset points', xytext=(4, 4),
                        fontsize=7)
    ax.set_xlabel('GFLOPs (multiply-adds, 224x224)')
    ax.set_ylabel('top-1 accuracy (%)')
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc='lower right')
    fig.tight_layout()
    fig.savefig(path, format='png')
    plt.close(fig)
    return path


def main(argv=None):
    """Plot accuracy against GFLOPs from a results CSV, or from the paper's table A."""
    import argparse
    parser = argparse.ArgumentParser(prog='octconv-plot-ablation', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--csv', help='results with columns %s' % ', '.join(COLUMNS))
    parser.add_argument('--output', '-o', default='ablation.png', help='PNG file to write')
    args = parser.parse_args(argv)
    try:
        rows = read_results(args.csv) if args.csv else table_a_results()
    except (OSError, ValueError) as err:
        print('octconv-plot-ablation: error: %s' % err, file=sys.stderr)
        return 2
    print('wrote %s (%d results)' % (plot(rows, args.output), len(rows)))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
