"""GANs on fastgen's kernels: losses, DCGAN (its generator up-samples with fastgen's fused
transposed convolution, ``torch.ops.fastgen.conv_transpose2d``), stabilisers (minibatch
discrimination, virtual batch norm, unrolled GAN, conditional models) and a trainer with exact
checkpoints.

* :mod:`.losses`: :func:`discriminator_loss`, :func:`generator_loss` (minimax, non-saturating,
  LSGAN), :func:`label_targets` (one- and two-sided smoothing), :func:`optimal_discriminator`;
* :mod:`.dcgan`: :class:`DCGANGenerator`, :class:`DCGANDiscriminator` (28x28, 32x32, 64x64),
  :class:`MLPGenerator`, :class:`MLPDiscriminator` (2-D mixtures);
* :mod:`.stabilizers`: :class:`MinibatchDiscrimination`, :class:`VirtualBatchNorm`,
  :func:`unrolled_generator_loss`;
* :mod:`.trainer`: :class:`GANTrainer`, :class:`GANConfig`, checkpoints, sample grids,
  :func:`interpolate_latents`;
* :mod:`.data`: the 2-D mixtures and their mode-coverage metrics, image loading for the CLI.
"""
from .dcgan import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
from .losses import discriminator_loss, generator_loss, label_targets, optimal_discriminator
from .stabilizers import (MinibatchDiscrimination, VirtualBatchNorm, forward_with_reference, reference_pass,
                          unrolled_discriminator, unrolled_generator_loss)
from .trainer import (GANConfig, GANTrainer, NonFiniteLossError, generate, interpolate_latents, load_checkpoint,
                      models_from_checkpoint, save_image_grid, trainer_from_checkpoint)

__all__ = ["DCGANGenerator", "DCGANDiscriminator", "MLPGenerator", "MLPDiscriminator", "discriminator_loss",
           "generator_loss", "label_targets", "optimal_discriminator", "MinibatchDiscrimination", "VirtualBatchNorm",
           "forward_with_reference", "reference_pass", "unrolled_discriminator", "unrolled_generator_loss",
           "GANConfig", "GANTrainer", "NonFiniteLossError", "generate", "interpolate_latents", "load_checkpoint",
           "models_from_checkpoint", "save_image_grid", "trainer_from_checkpoint"]
