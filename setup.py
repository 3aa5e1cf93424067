"""Builds fastgen._C (csrc/, C++17, OpenMP). Metadata lives in pyproject.toml."""
import importlib.util
from pathlib import Path

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup
from setuptools.command.build_py import build_py as _build_py

_spec = importlib.util.spec_from_file_location("_fastgen_build", Path(__file__).parent / "fastgen" / "_build.py")
_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_build)

ext_modules = [
    Pybind11Extension(
        "fastgen._C",
        sources=_build.cpu_sources(),
        include_dirs=_build.cpu_include_dirs(),
        extra_compile_args=_build.cpu_compile_args(),
        extra_link_args=_build.cpu_link_args(),
        cxx_std=17,
    )
]

class build_py(_build_py):
    """Also copies kernels/*.cu and kernels/include/ into the built package (fastgen/kernels), so
    that an installed wheel can compile its CUDA kernels at run time (fastgen/_native/cuda_runtime.py looks
    there first, then in the source checkout)."""

    def run(self):
        super().run()
        import shutil

        root = Path(__file__).parent / "kernels"
        target = Path(self.build_lib) / "fastgen" / "kernels"
        for path in [*root.glob("*.cu"), *root.glob("include/**/*.h")]:
            dest = target / path.relative_to(root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)


setup(ext_modules=ext_modules, cmdclass={"build_ext": build_ext, "build_py": build_py})
