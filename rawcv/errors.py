"""Exceptions raised by rawcv. Each message names what is wrong so the CLI can print it as one line."""


class RawcvError(Exception):
    """Base class of every error rawcv raises on bad input."""


class RawReadError(RawcvError):
    """A file could not be read as RAW (missing, not RAW, truncated, corrupt)."""


class UnsupportedCFAError(RawcvError, ValueError):
    """The sensor layout is not one of the four Bayer patterns (X-Trans, 4-colour, ...)."""


class PipelineError(RawcvError, ValueError):
    """A pipeline or one of its stages is malformed (unknown stage/parameter, wrong order)."""


class OutputExistsError(RawcvError, FileExistsError):
    """An output file exists and overwriting was not asked for."""


class MissingDependencyError(RawcvError, ImportError):
    """An optional dependency (PyTorch, Dask) is needed for this feature and is not installed."""
