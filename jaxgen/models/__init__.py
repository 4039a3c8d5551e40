"""Model zoo: one file per model."""

from jaxgen.models.gated_pixelcnn import GatedPixelCNN
from jaxgen.models.pixelcnn import PixelCNN
from jaxgen.models.pixelrnn import PixelRNN

__all__ = ["GatedPixelCNN", "PixelCNN", "PixelRNN"]

from jaxgen.models.autoencoder import Autoencoder, reconstruction_loss  # noqa: E402
from jaxgen.models.vae import VAE, reparameterize  # noqa: E402

__all__ += ["Autoencoder", "VAE", "reconstruction_loss", "reparameterize"]

from jaxgen.models.dcgan import (  # noqa: E402
    DCGANDiscriminator,
    DCGANGenerator,
    MLPDiscriminator,
    MLPGenerator,
    make_gan,
)

__all__ += ["DCGANDiscriminator", "DCGANGenerator", "MLPDiscriminator", "MLPGenerator", "make_gan"]
