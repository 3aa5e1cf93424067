"""``fastgen train vae [DATA]`` / ``fastgen train ae [DATA]``: trains (or resumes) a VAE (MLP or
convolutional) or an autoencoder (plain, denoising, contractive, greedy stacked, convolutional) on
images, with checkpoints, a PCA baseline and sample / reconstruction / interpolation PNGs. The
options are defined here, without torch, so that ``--help`` lists them where torch is missing;
the training itself is :func:`fastgen.torch.training.train_from_cli`."""
from __future__ import annotations

from .. import _argtypes
from .common import import_torch
from .options import add_old_spelling

# a new run's epochs: fastgen.torch.training.DEFAULT_EPOCHS (a test keeps them equal)
AUTOENCODER_EPOCHS = 30


def add_autoencoder_arguments(parser, family: str) -> None:
    """The options of ``fastgen train vae`` (family "vae") / ``fastgen train ae`` ("ae"), defined
    without importing torch, so ``--help`` lists them where torch is missing (running the command
    then says that it needs torch)."""
    parser.add_argument("data", metavar="DATA", nargs="?", default=None,
                        help="a .npy/.npz/MNIST-IDX file (values scaled to [0, 1]); default: scikit-learn's digits, "
                             "or with --resume the checkpoint's data")
    parser.add_argument("--key", help="array to read from a .npz archive")
    parser.add_argument("--binarize", type=_argtypes.finite_float, metavar="T",
                        help="set values > T to 1, the rest to 0")
    if family == "ae":
        parser.add_argument("--kind", choices=["ae", "dae", "cae", "stacked", "conv", "conv-pool"], default="ae",
                            help="MLP, denoising, contractive, greedy stacked, strided-convolution or "
                                 "pooling/unpooling convolutional autoencoder (default: %(default)s)")
        parser.add_argument("--noise-level", type=_argtypes.finite_float, default=0.25,
                            help="dae: masking probability, or the Gaussian noise's sd (default: %(default)s)")
        parser.add_argument("--contraction", type=_argtypes.finite_float, default=0.1,
                            help="cae: weight of the Jacobian penalty (default: %(default)s)")
        parser.add_argument("--pretrain-epochs", type=_argtypes.nonnegative_int, default=5,
                            help="stacked: epochs per layer of greedy pretraining (default: %(default)s)")
    else:
        parser.add_argument("--conv", action="store_true", help="the convolutional VAE (square images)")
    parser.add_argument("--hidden", type=_argtypes.positive_int, nargs="+", default=[256] if family == "ae" else [400],
                        help="MLP hidden layer sizes (default: %(default)s)")
    parser.add_argument("--channels", type=_argtypes.positive_int, nargs="+", default=[32, 64],
                        help="convolutional models: feature maps per stride-2 stage (default: %(default)s)")
    parser.add_argument("--latent", type=_argtypes.positive_int, default=32 if family == "ae" else 20,
                        help="code / latent size (default: %(default)s)")
    parser.add_argument("--likelihood", choices=["bernoulli", "gaussian"], default="bernoulli",
                        help="decoder distribution (default: %(default)s)")
    parser.add_argument("--epochs", type=_argtypes.nonnegative_int, default=None,
                        help=f"total epochs (default: {AUTOENCODER_EPOCHS}); with --resume: the total to reach, "
                             "counting the checkpoint's (default: the target of the run it belongs to)")
    parser.add_argument("--batch-size", type=_argtypes.positive_int, default=128, help="(default: %(default)s)")
    parser.add_argument("--lr", type=_argtypes.positive_float, default=None,
                        help="Adam learning rate (default: 1e-3, 1e-2 for --kind cae; with --resume: the checkpoint's)")
    parser.add_argument("--seed", type=_argtypes.seed, default=None,
                        help="train/test split, initial weights, batch order (default: 0; with --resume: the "
                             "checkpoint's)")
    parser.add_argument("--threads", type=_argtypes.threads, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--save", metavar="CKPT", help="write a checkpoint after every epoch and at the end "
                                                       "(atomically)")
    parser.add_argument("--resume", metavar="CKPT", help="continue a checkpoint written with --save (only tensors "
                                                         "and settings are read from it, never code)")
    add_old_spelling(parser, "--load", "resume", "use --resume, with which --epochs is the total to reach "
                                                  "(with --load, --epochs N still trains N more)", metavar="CKPT")
    parser.add_argument("--out", default="fastgen_output", help="folder for the PNGs (default: %(default)s)")


def train_vae(args) -> int:
    """Run ``fastgen train vae``; returns the exit code."""
    import_torch("train vae")
    from ..torch.training import train_from_cli

    return train_from_cli(args, "vae")


def train_ae(args) -> int:
    """Run ``fastgen train ae``; returns the exit code."""
    import_torch("train ae")
    from ..torch.training import train_from_cli

    return train_from_cli(args, "ae")


def add_parsers(train_sub) -> None:
    """``vae`` and ``ae`` among the models of ``fastgen train`` (``train_sub``: its subparsers)."""
    vae = train_sub.add_parser(
        "vae", help="variational autoencoder (default: scikit-learn's digits; needs torch)",
        description="Train a VAE (MLP, or --conv for the convolutional one; Bernoulli or Gaussian decoder) on DATA "
                    "(default: scikit-learn's 8x8 digits) with fastgen's fused reparameterisation and likelihood ops. "
                    "Holds out 10% of the samples; prints train/test negative ELBO per epoch and the test "
                    "reconstruction error beside PCA's with as many components as latent units; writes "
                    "samples.png, reconstructions.png (input, reconstruction pairs) and interpolation.png to --out.")
    add_autoencoder_arguments(vae, "vae")
    vae.set_defaults(func=train_vae)
    ae = train_sub.add_parser(
        "ae", help="autoencoder: plain, denoising, contractive, stacked or convolutional (needs torch)",
        description="Train an autoencoder (--kind) on DATA (default: scikit-learn's 8x8 digits). Holds out 10% of "
                    "the samples; prints train/test reconstruction loss per epoch and the test reconstruction "
                    "error beside PCA's at the same code size; writes reconstructions.png and interpolation.png.")
    add_autoencoder_arguments(ae, "ae")
    ae.set_defaults(func=train_ae)
