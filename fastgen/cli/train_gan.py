"""``fastgen train gan [DATA]``: trains (or resumes) a DCGAN on images (default: scikit-learn's
digits at 32x32), writing checkpoints and sample grids. The training itself is
:func:`fastgen.torch.gan.cli.train_from_cli`."""
from __future__ import annotations

from .. import _argtypes
from .common import import_torch

def run(args) -> int:
    """Run ``fastgen train gan``; returns the exit code."""
    import_torch("train gan")
    from ..torch.gan.cli import train_from_cli

    return train_from_cli(args)


def add_parser(train_sub) -> None:
    """``gan`` among the models of ``fastgen train`` (``train_sub``: its subparsers)."""
    gan = train_sub.add_parser(
        "gan", help="DCGAN on images (default: scikit-learn's digits at 32x32; needs torch)",
        description="Train a DCGAN (Radford et al. 2016; the generator runs fastgen's fused transposed convolution) "
                    "on DATA: 'digits' (scikit-learn's 8x8 digits resized to 32x32, the default) or a .npy/.npz/"
                    "MNIST-IDX file of (N, H, W) or (N, C, H, W) images, 28, 32 or 64 pixels square (or resized "
                    "with --image-size). Writes a checkpoint after every epoch, a fixed-noise sample grid per epoch "
                    "(samples_epochNNN.png), samples.png and interpolation.png to --out (the checkpoint to --save, "
                    "default OUT/checkpoint.pt); --resume continues a checkpoint exactly.")
    gan.add_argument("data", metavar="DATA", nargs="?", default=None,
                     help="'digits' or an image file (default: digits; with --resume: the checkpoint's data, "
                          "and other data is refused)")
    gan.add_argument("--key", help="array to read from a .npz archive")
    gan.add_argument("--image-size", type=int, choices=[28, 32, 64], help="resize the images to this size")
    gan.add_argument("--epochs", type=_argtypes.nonnegative_int, help="total epochs (default: 20; with --resume: the "
                                                              "target of the checkpoint's run)")
    gan.add_argument("--latent-dim", type=_argtypes.positive_int, help="(default: 100)")
    gan.add_argument("--width", type=_argtypes.positive_int, help="feature maps of the outermost layers (default: 32)")
    gan.add_argument("--batch-size", type=_argtypes.positive_int, help="(default: 64)")
    gan.add_argument("--loss", choices=["minimax", "nonsaturating", "lsgan"], help="(default: nonsaturating)")
    gan.add_argument("--smoothing", choices=["none", "one_sided", "two_sided"], help="label smoothing "
                                                                                      "(default: none)")
    gan.add_argument("--d-steps", type=_argtypes.positive_int,
                     help="discriminator steps per generator step (default: 1)")
    gan.add_argument("--unrolled-steps", type=_argtypes.nonnegative_int, help="unrolled-GAN steps (default: 0)")
    gan.add_argument("--lr", type=_argtypes.finite_float, help="Adam learning rate of both networks (default: 2e-4)")
    gan.add_argument("--norm", choices=["batch", "virtual", "none"], help="(default: batch)")
    gan.add_argument("--minibatch-kernels", type=_argtypes.nonnegative_int,
                     help="minibatch discrimination kernels in the discriminator (default: 0, none)")
    gan.add_argument("--conditional", action="store_true", help="condition both networks on the labels")
    gan.add_argument("--seed", type=_argtypes.seed, default=0, help="(default: %(default)s)")
    gan.add_argument("--out", default="fastgen_output/gan", help="folder for the PNGs and the checkpoint "
                                                                 "(default: %(default)s)")
    gan.add_argument("--save", metavar="CHECKPOINT", help="checkpoint file, written after every epoch "
                                                          "(default: OUT/checkpoint.pt)")
    gan.add_argument("--resume", metavar="CHECKPOINT", help="continue a checkpoint (model settings come from it)")
    gan.add_argument("--checkpoint-every", type=_argtypes.positive_int, metavar="N",
                     help="also save every N iterations (default: after every epoch only)")
    gan.add_argument("--threads", type=_argtypes.threads, help="torch CPU threads (default: torch's)")
    gan.add_argument("--no-progress", action="store_true", help="no progress bar")
    gan.set_defaults(func=run)
