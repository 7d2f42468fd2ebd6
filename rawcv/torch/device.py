"""Where torch work runs: one resolution of ``"auto"``, ``"cpu"``, ``"cuda"`` for every room."""

from __future__ import annotations

import torch

from ..errors import RawcvError

DEVICES = ("auto", "cpu", "cuda")


class DeviceError(RawcvError, ValueError):
    """An unknown device name, or CUDA asked for where there is none."""


def resolve_device(device="auto") -> torch.device:
    """``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a torch.device.

    Raises :class:`DeviceError` for an unknown name or CUDA asked for where there is none.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, torch.device):
        dev = device
    elif device is None or (isinstance(device, str) and device.lower() == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device.lower() if isinstance(device, str) else device)
        except (RuntimeError, TypeError):
            raise DeviceError(f"unknown device {device!r}: expected auto, cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {str(device)!r} requested but CUDA is not available (use --device cpu or auto)")
    return dev


__all__ = ["DEVICES", "DeviceError", "resolve_device"]
