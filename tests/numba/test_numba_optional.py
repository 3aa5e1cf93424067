"""numba stays optional: fastgen imports without it, and fastgen.numba says how to get it."""
from __future__ import annotations

import subprocess
import sys


def test_fastgen_imports_without_numba_and_fastgen_numba_names_the_extra():
    code = ("import sys\n"
            "sys.modules['numba'] = None  # as if numba were not installed\n"
            "import numpy as np, fastgen, fastgen.ops\n"
            "fastgen.ops.sample_bernoulli(np.zeros(3), generator=0)\n"
            "try:\n"
            "    import fastgen.numba\n"
            "except ImportError as exc:\n"
            "    print(exc)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "fastgen.numba needs numba: pip install 'fastgen[numba]'" in result.stdout


def test_importing_fastgen_does_not_import_numba():
    code = "import sys, fastgen, fastgen.ops, fastgen.sklearn\nprint('numba' in sys.modules)\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
