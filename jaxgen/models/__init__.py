"""Model zoo: one file per model."""

from jaxgen.models.pixelcnn import PixelCNN

__all__ = ["PixelCNN"]
