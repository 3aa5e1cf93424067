"""fastgen.torch's layout: ops/ (custom ops), nn/ (modules), train/ (loop, checkpoints, command); each
module's older name imports the moved module itself, and fastgen.torch.training keeps its names."""
import importlib

import pytest

pytest.importorskip("torch")

MOVED = [("fastgen.torch.reparam", "fastgen.torch.ops.reparam"), ("fastgen.torch.conv", "fastgen.torch.ops.conv"),
         ("fastgen.torch.elbo", "fastgen.torch.ops.elbo"), ("fastgen.torch.pool", "fastgen.torch.ops.pool"),
         ("fastgen.torch.sparse_linear", "fastgen.torch.ops.sparse_linear"),
         ("fastgen.torch.layers", "fastgen.torch.nn.layers"),
         ("fastgen.torch.autoencoders", "fastgen.torch.nn.autoencoders"), ("fastgen.torch.vae", "fastgen.torch.nn.vae"),
         ("fastgen.torch.training", "fastgen.torch.train.command")]


@pytest.mark.parametrize("old, new", MOVED)
def test_an_older_module_name_is_the_moved_module(old, new):
    assert importlib.import_module(old) is importlib.import_module(new)


def test_training_keeps_the_loop_and_checkpoint_names():
    from fastgen.torch import training
    from fastgen.torch.train import checkpoints, loop

    for name in ("fit", "evaluate", "reconstruction_mse", "pca_reconstruction_mse", "NonFiniteLoss"):
        assert getattr(training, name) is getattr(loop, name)
    for name in ("save_checkpoint", "read_checkpoint", "load_checkpoint", "MODEL_KINDS"):
        assert getattr(training, name) is getattr(checkpoints, name)


def test_the_package_exports_every_op():
    import fastgen.torch
    import fastgen.torch.ops

    assert fastgen.torch.__all__ == fastgen.torch.ops.__all__
    for name in fastgen.torch.__all__:
        assert getattr(fastgen.torch, name) is getattr(fastgen.torch.ops, name)
