"""Check a ``--device`` before anything is created: a torch device this build and machine have."""

from __future__ import annotations

from models.exceptions import DeviceError


def check_device(name: str) -> str:
    """``name`` if torch can place tensors there now, else :class:`DeviceError` saying why."""
    if name == "cpu":
        return name  # no torch import for the default
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise DeviceError(f"{name!r} is not a torch device (cpu, cuda, cuda:1, mps, ...)") from None
    if device.type == "meta":
        raise DeviceError(f"{name!r} holds no data; use cpu or an accelerator")
    if device.type == "cuda":
        if torch.version.cuda is None and torch.version.hip is None:
            raise DeviceError(
                f"{name}: this torch ({torch.__version__}) is built without CUDA; use --device "
                "cpu or install a CUDA build of torch"
            )
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise DeviceError(f"{name}: no CUDA device is visible to torch; use --device cpu")
        if device.index is not None and device.index >= count:
            raise DeviceError(
                f"{name}: torch sees {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
            )
        return name
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"{name}: this torch or machine has no MPS (Apple GPU); use cpu")
    try:
        torch.empty(0, device=device)
    except Exception as exc:  # noqa: BLE001 - backends fail in their own ways (hpu: ImportError)
        why = str(exc).strip().split(". ")[0][:120] or type(exc).__name__
        raise DeviceError(f"{name}: not usable with this torch ({why})") from None
    return name
