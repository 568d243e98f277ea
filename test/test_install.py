"""The installed environment: mxnet imports in any order (the start-up hook octconv
installs), in a fresh interpreter of this environment."""
import glob
import os
import subprocess
import sys
import sysconfig

import pytest

EDITABLE = glob.glob(os.path.join(sysconfig.get_paths()['purelib'], '__editable__*octconv*'))
pytestmark = pytest.mark.skipif(bool(EDITABLE), reason=(
    'octconv is installed in editable mode here (pip install -e), which does not install the '
    '.pth start-up hook; make test installs it as users do (pip install .)'))


@pytest.mark.parametrize('program', ['import mxnet; print(mxnet.nd.ones((2,)).sum().asscalar())',
                                     'import gluoncv; import mxnet; print(2.0)'])
def test_mxnet_imports_before_octconv(program):
    done = subprocess.run([sys.executable, '-c', program], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == '2.0'


def test_the_start_up_hook_defines_only_the_missing_alias():
    program = ('import sys, numpy\n'
               'assert "bool" not in vars(numpy)  # numpy 1.26 has no alias until mxnet loads\n'
               'import mxnet\n'
               'assert numpy.bool is bool and not any(type(f).__name__ == "MXNetNumpyBool"\n'
               '                                      for f in sys.meta_path)\n')
    done = subprocess.run([sys.executable, '-c', program], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
