"""nn.Modules built on fastgen's torch ops: :mod:`.layers` (the fused transposed convolution, the
sparse-input linear layer), :mod:`.autoencoders` (plain, denoising, contractive, stacked,
convolutional) and :mod:`.vae` (MLP and convolutional VAEs)."""
from .autoencoders import (Autoencoder, ContractiveAutoencoder, ConvAutoencoder, DenoisingAutoencoder,
                           pretrain_stacked)
from .layers import ConvTranspose2d, SparseInputLinear
from .vae import VAE, ConvVAE, VAEOutput

__all__ = ["Autoencoder", "DenoisingAutoencoder", "ContractiveAutoencoder", "ConvAutoencoder", "pretrain_stacked",
           "ConvTranspose2d", "SparseInputLinear", "VAE", "ConvVAE", "VAEOutput"]
