"""The README and docs/ run as written: every python block of README.md, and each block of
docs/*.md marked ``<!-- run -->``, runs in a new process (forked from one that has only
imported MXNet and octconv: :mod:`forked_python`), and where a ``text`` block follows it,
prints exactly that; the generated sections are up to date with the kept runs and the
records; no work history in user docs."""
import json
import os
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = [ROOT / 'README.md'] + sorted((ROOT / 'docs').glob('*.md'))
BLOCK = re.compile(r'(<!-- run -->\n)?```python\n(.*?)```\n(```text\n(.*?)```)?', re.S)


def _blocks():
    found = []
    for path in DOCS:
        for number, match in enumerate(BLOCK.finditer(path.read_text())):
            if path.name == 'README.md' or match.group(1):
                found.append(pytest.param(match.group(2), match.group(4),
                                          id='%s-%d' % (path.name, number)))
    return found


@pytest.mark.parametrize('code, printed', _blocks())
def test_the_example_runs_as_written(code, printed, tmp_path, forked_python):
    exit_code, stdout, stderr = forked_python.run(code, tmp_path, timeout=300, env=dict(
        os.environ, HOME=str(tmp_path), TMPDIR=str(tmp_path)))
    assert exit_code == 0, stderr[-3000:]
    if printed is not None:                 # the output the page shows is the output it gets
        assert stdout == printed


def test_examples_run_as_scripts_do(tmp_path, forked_python):
    """What the examples run in: a new process per example, as ``python -c`` gives it."""
    script = ('import os, sys\nprint(os.getcwd(), os.environ["HOME"], __name__)\n'
              'open("here.txt", "w").write("x")\nsys.exit(3)')
    assert forked_python.run(script, tmp_path, env=dict(os.environ, HOME='/nowhere'),
                             timeout=60) == (3, '%s /nowhere __main__\n' % tmp_path, '')
    assert (tmp_path / 'here.txt').read_text() == 'x'
    exit_code, _, stderr = forked_python.run('import mxnet\nx = undefined_name', tmp_path,
                                             env=os.environ, timeout=60)
    assert exit_code == 1 and "NameError: name 'undefined_name'" in stderr


def test_the_generated_sections_are_up_to_date(tmp_path, forked_python):
    script = ('import runpy, sys\nsys.argv = ["generate.py", "--check"]\n'
              'runpy.run_path(%r, run_name="__main__")' % str(ROOT / 'docs' / 'generate.py'))
    exit_code, stdout, stderr = forked_python.run(script, tmp_path, env=os.environ, timeout=300)
    assert exit_code == 0, stdout + stderr[-3000:]


def test_user_docs_hold_no_work_history_and_the_readme_stays_short():
    for path in DOCS:
        text = path.read_text()
        assert not re.search(r'\bissue \d+|\bcommit\b|\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)'
                             r'[0-9a-f]{7,40}\b', text), path
    assert len((ROOT / 'README.md').read_text().splitlines()) <= 220


def test_every_file_the_docs_name_exists():
    named = {match for path in DOCS for match in re.findall(
        r'`((?:test|docs|studies|train|utils|gluon|symbol|results)/[\w/.-]+\.\w+)`',
        path.read_text())}
    assert named and not sorted(name for name in named if not (ROOT / name).is_file())


def test_the_readme_shows_the_flop_count_make_demo_prints(capsys):
    """The FLOP count the README quotes is what the Makefile's octconv-flops command prints
    for the model the demo trains."""
    from octconv.train import flops_report
    line = next(line for line in (ROOT / 'Makefile').read_text().splitlines()
                if 'octconv-flops' in line)
    argv = line.split('octconv-flops', 1)[1].split()
    assert flops_report.main(argv + ['--json']) == 0
    count = json.loads(capsys.readouterr().out)
    quoted = '%.2fM parameters, %.2fM FLOPs at 32 px, 10 classes' % (count['params'] / 1e6,
                                                                      count['flops'] / 1e6)
    assert '--classes 10' in line                     # the demo digits' 10 classes
    assert quoted in ' '.join((ROOT / 'README.md').read_text().split())
