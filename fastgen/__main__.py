"""``python -m fastgen ...``: the same as the ``fastgen`` command.

From a checkout after a plain (non-editable) ``pip install .``, ``python -m fastgen`` finds the
checkout's source tree first (the current directory leads sys.path), and it has no compiled
module. Then the command runs the installed fastgen instead, in a fresh interpreter that leaves
the checkout out of sys.path, and says so in one line.
"""
import importlib.machinery
import os
import sys
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_GUARD = "FASTGEN_RUNNING_INSTALLED"  # set in the fresh interpreter: never hand over twice


def _compiled(package: Path) -> bool:
    return any(package.glob("_C.*")) or (package / "_C.so").is_file()


def _installed_elsewhere():
    """The package folder of another installed fastgen with a compiled module, or None."""
    checkout = str(_PACKAGE.parent)
    path = [p for p in sys.path if os.path.abspath(p or ".") != checkout]
    spec = importlib.machinery.PathFinder.find_spec("fastgen", path)
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(list(spec.submodule_search_locations)[0]).resolve()
    return package if package != _PACKAGE and _compiled(package) else None


if __name__ == "__main__":
    installed = None if _compiled(_PACKAGE) or os.environ.get(_GUARD) else _installed_elsewhere()
    if installed is not None:
        print(f"note: {_PACKAGE} has no compiled module (a source checkout); running the installed fastgen at "
              f"{installed}", file=sys.stderr)
        code = (f"import os, sys; sys.path[:] = [p for p in sys.path if os.path.abspath(p or '.') != "
                f"{str(_PACKAGE.parent)!r}]; from fastgen.cli import main; sys.exit(main())")
        os.execve(sys.executable, [sys.executable, "-c", code, *sys.argv[1:]], dict(os.environ, **{_GUARD: "1"}))
    from fastgen.cli import main

    sys.exit(main())
