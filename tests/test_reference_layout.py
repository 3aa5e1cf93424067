"""The references' layout (DESIGN.md: tests/reference/<op>.py holds an op's plain NumPy reference):
every op module in fastgen/ops has its reference module of the same name, or is listed below with
where its reference lives instead; the package re-exports each name once, including every name
of the single-file tests/reference.py it replaced, so `import reference as ref` keeps working."""
from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

import reference

REPO_ROOT = Path(__file__).resolve().parents[1]
OPS_DIR = REPO_ROOT / "fastgen" / "ops"
REFERENCE_DIR = Path(reference.__file__).resolve().parent

# fastgen/ops modules that hold no op: the package itself and the shared array checks
# (private modules, such as a dispatch helper, are skipped by their leading underscore).
NOT_OPS = {"__init__", "validation"}

# Ops whose reference is another library's own function, called directly by their tests.
REFERENCE_ELSEWHERE = {
    "conv": "torch.nn.functional.conv_transpose2d followed by the activation "
            "(tests/torch/test_torch_conv.py)",
    "pool": "torch.nn.functional.max_pool2d / max_unpool2d / avg_pool2d (tests/ops/test_pool.py)",
}

# The public names of the single-file tests/reference.py (until f84b315); its private helpers
# _take and _f64 are public here as seed_and_offset and as_float64, shared by several modules.
SINGLE_FILE_NAMES = [
    "AMBIGUOUS_TOL", "BernoulliDraw", "CDRef", "GBCDRef", "GBMixture", "GibbsRef", "MASK32", "Normals",
    "PHILOX_M0", "PHILOX_M1", "PHILOX_W0", "PHILOX_W1", "TrainRef", "all_states", "ambiguous_tol", "bernoulli",
    "cd_gradients", "energy", "free_energy", "gb_cd_gradients", "gb_energy", "gb_free_energy", "gb_hidden_probs",
    "gb_mixture", "gb_moments", "gb_visible_mean", "gibbs", "hidden_probs", "log_partition_brute_force",
    "log_sigmoid", "normal", "normals_from_words", "philox4x32_10", "philox_words_numpy", "pseudo_likelihood",
    "sample_bernoulli", "sample_gaussian", "sgd_step", "sigmoid", "softplus", "stream_counter", "stream_key",
    "stream_word_py", "train_pass", "uniform", "uniform_from_words", "uniform_open", "uniform_open_from_words",
    "visible_probs", "words",
]


def op_names() -> list[str]:
    return sorted(p.stem for p in OPS_DIR.glob("*.py") if p.stem not in NOT_OPS and not p.stem.startswith("_"))


def reference_modules() -> list[str]:
    return sorted(p.stem for p in REFERENCE_DIR.glob("*.py") if not p.stem.startswith("_"))


def test_the_ops_are_found():
    assert {"sampling", "gibbs", "cd", "categorical", "reparam"} <= set(op_names())


@pytest.mark.parametrize("op", op_names())
def test_every_op_has_its_reference_module(op):
    has_module = (REFERENCE_DIR / f"{op}.py").is_file()
    if op in REFERENCE_ELSEWHERE:
        assert not has_module, f"tests/reference/{op}.py exists: remove {op!r} from REFERENCE_ELSEWHERE"
    else:
        assert has_module, f"fastgen/ops/{op}.py has no reference: add tests/reference/{op}.py"


def test_the_exceptions_are_ops():
    assert set(REFERENCE_ELSEWHERE) <= set(op_names())


def test_no_single_file_reference_shadows_the_package():
    assert not (REFERENCE_DIR.parent / "reference.py").exists()
    assert REFERENCE_DIR == REPO_ROOT / "tests" / "reference"


@pytest.mark.parametrize("name", SINGLE_FILE_NAMES)
def test_the_single_file_names_are_re_exported(name):
    assert name in reference.__all__
    assert hasattr(reference, name)


def test_every_function_and_class_has_one_home_and_is_re_exported():
    homes: dict[str, str] = {}
    for module_name in reference_modules():
        module = importlib.import_module(f"reference.{module_name}")
        for name, value in vars(module).items():
            if name.startswith("_") or not (inspect.isfunction(value) or inspect.isclass(value)):
                continue
            if value.__module__ != module.__name__:
                continue  # imported from a sibling
            assert name not in homes, f"{name} is defined in both {homes[name]} and {module_name}"
            homes[name] = module_name
            assert getattr(reference, name) is value, f"reference.{name} is not reference.{module_name}.{name}"
            assert name in reference.__all__
    assert len(reference.__all__) == len(set(reference.__all__))
    assert all(hasattr(reference, name) for name in reference.__all__)
