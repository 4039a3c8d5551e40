"""Model zoo, one file per model: the Flax modules only.

Autoregressive (int images -> logits [B, H, W, C, L]): ``PixelCNN``,
``GatedPixelCNN``, ``PixelRNN``, ``PixelSNAIL`` (convolutions and attention),
``ImageGPT`` (a transformer), and the fully visible belief nets before them,
``FVSBN``, ``NADE`` and ``MADE``; latent-variable: ``Autoencoder``, ``VAE``;
adversarial: ``DCGANGenerator``/``DCGANDiscriminator`` and the fully connected
``MLPGenerator``/``MLPDiscriminator``; change of variables (a normalizing flow):
``RealNVP``. Their losses are in ``jaxgen.losses``,
their samplers in ``jaxgen.sampling``, ``jaxgen.latent`` and ``jaxgen.gan``;
``models.registry`` builds an autoregressive model by name from a config and
``models.dcgan.make_gan`` a (generator, discriminator) pair.

Markov chain (a Boltzmann machine): ``RBM``, its Gibbs samplers and exact small-model
log Z in ``jaxgen.models.rbm``, its AIS estimate of log Z in ``jaxgen.ais``.
"""

from jaxgen.models.autoencoder import Autoencoder
from jaxgen.models.dcgan import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
from jaxgen.models.fvsbn import FVSBN
from jaxgen.models.gated_pixelcnn import GatedPixelCNN
from jaxgen.models.imagegpt import ImageGPT
from jaxgen.models.made import MADE
from jaxgen.models.nade import NADE
from jaxgen.models.pixelcnn import PixelCNN
from jaxgen.models.pixelrnn import PixelRNN
from jaxgen.models.pixelsnail import PixelSNAIL
from jaxgen.models.rbm import RBM
from jaxgen.models.realnvp import RealNVP
from jaxgen.models.vae import VAE

__all__ = [
    "FVSBN",
    "MADE",
    "NADE",
    "VAE",
    "Autoencoder",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "GatedPixelCNN",
    "ImageGPT",
    "MLPDiscriminator",
    "MLPGenerator",
    "PixelCNN",
    "PixelRNN",
    "PixelSNAIL",
    "RBM",
    "RealNVP",
]
