"""Builds fastgen._C (csrc/, C++17, OpenMP). Metadata lives in pyproject.toml."""
import importlib.util
from pathlib import Path

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup

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

setup(ext_modules=ext_modules, cmdclass={"build_ext": build_ext})
