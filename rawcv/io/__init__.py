"""Reading RAW files and sensor dumps, writing DNGs and images with JSON sidecars, atomically."""

from .dng import write_dng
from .reader import RawMetadata, read, read_bayer, read_metadata

__all__ = ["RawMetadata", "read", "read_bayer", "read_metadata", "write_dng"]
