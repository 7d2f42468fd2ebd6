"""rawcv: camera RAW files to linear-radiance images and convolutional networks.

``import rawcv`` stays light: it imports NumPy, the Numba kernels' modules (compiled lazily, cached
on disk) and never torch. The torch stage lives in :mod:`rawcv.torch`, :mod:`rawcv.models`,
:mod:`rawcv.data` and :mod:`rawcv.train`.
"""

from . import isp
from .errors import OutputExistsError, PipelineError, RawcvError, RawReadError, UnsupportedCFAError
from .io import read, read_bayer, read_metadata, write_dng
from .meta import BAYER_PATTERNS, CameraMeta, RawImage
from .pipeline import Pipeline, load_pipeline

__version__ = "0.1.0"

_LAZY_SUBMODULES = ("noise", "synth", "batch", "torch", "models", "data", "train")


def __getattr__(name):
    # heavier rooms load on first use, so `import rawcv` stays fast and torch-free
    if name in _LAZY_SUBMODULES:
        import importlib
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'rawcv' has no attribute {name!r}")

__all__ = ["read", "read_bayer", "read_metadata", "write_dng", "Pipeline", "load_pipeline", "RawImage", "CameraMeta",
           "BAYER_PATTERNS", "isp", "RawcvError", "RawReadError", "UnsupportedCFAError", "PipelineError",
           "OutputExistsError", "__version__"]
