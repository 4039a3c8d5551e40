"""jaxgen: classic deep generative models for images in JAX/Flax."""

from jaxgen import losses, models, sampling

__all__ = ["losses", "models", "sampling"]
__version__ = "0.1.0"
