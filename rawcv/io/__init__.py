"""Reading RAW files and sensor dumps, writing DNGs and images with JSON sidecars, atomically."""

from .dng import write_dng
from .reader import read, read_bayer

__all__ = ["read", "read_bayer", "write_dng"]
