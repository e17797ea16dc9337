"""Choosing the compute device, with errors that say what to do instead of a crash deep in a backend.

torch and CTranslate2 (faster-whisper's engine) find CUDA independently: torch may see a GPU while a
CTranslate2 wheel cannot use it (no libcublas.so.12 on the library path, a cuDNN of the wrong major
version). A missing cuDNN/cuBLAS then aborts the process at the first inference ("Could not load library
libcudnn_ops_infer.so.8 ... Aborted (core dumped)", faster-whisper issues #516 and #885), which no
`except` can catch, so the libraries are checked before a model is put on the GPU.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from dataclasses import dataclass
from typing import Literal

from core.errors import ErrorCode, MediaError

Device = Literal["cpu", "cuda"]

log = logging.getLogger(__name__)

# Shared libraries CTranslate2 4.x (CUDA 12 builds) loads lazily at the first GPU op (Linux names).
CTRANSLATE2_CUDA_LIBS = ("libcublas.so.12",)


@dataclass(frozen=True)
class CudaCheck:
    ok: bool
    devices: int  # CUDA devices CTranslate2 sees (it may see some and still be unable to use them)
    reason: str  # empty when ok


def torch_cuda_available() -> bool:
    """Whether torch can use a GPU. Imports torch lazily (slow, ~2 s); False when torch is absent."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def resolve_device(requested: str) -> Device:
    """Map "auto" | "cpu" | "cuda" to the device torch models should use.

    Raises MediaError(MODEL_UNAVAILABLE) when "cuda" is asked for and torch has no GPU.
    """
    if requested == "cpu":
        return "cpu"
    if requested not in ("auto", "cuda"):
        raise MediaError(ErrorCode.MODEL_UNAVAILABLE, f"unknown device {requested!r}: use auto, cpu or cuda")
    if torch_cuda_available():
        return "cuda"
    if requested == "cuda":
        raise MediaError(
            ErrorCode.MODEL_UNAVAILABLE,
            "CUDA is not available (torch sees no GPU: CPU-only torch build, no driver, or no device); "
            "use --device cpu",
        )
    return "cpu"


def ctranslate2_cuda_ok() -> CudaCheck:
    """Whether CTranslate2 (faster-whisper) can run on a GPU here, and if not, why."""
    try:
        import ctranslate2
    except ImportError:
        return CudaCheck(False, 0, "ctranslate2 is not installed")
    try:
        count = int(ctranslate2.get_cuda_device_count())
    except Exception as exc:  # a driver/runtime mismatch surfaces here as a RuntimeError
        return CudaCheck(False, 0, f"CTranslate2 could not query CUDA: {exc}")
    if count == 0:
        return CudaCheck(False, 0, "CTranslate2 sees no CUDA device (no GPU, no driver, or a CPU-only build)")
    if sys.platform.startswith("linux"):
        for lib in CTRANSLATE2_CUDA_LIBS:
            try:
                ctypes.CDLL(lib)
            except OSError as exc:
                return CudaCheck(
                    False,
                    count,
                    f"{lib} cannot be loaded ({exc}); CTranslate2 {ctranslate2.__version__} needs the "
                    "CUDA 12 cuBLAS and cuDNN 9 libraries on the library path (e.g. pip install "
                    "nvidia-cublas-cu12 'nvidia-cudnn-cu12==9.*' and add their lib dirs to "
                    "LD_LIBRARY_PATH; see faster-whisper issues #516 and #885)",
                )
    return CudaCheck(True, count, "")


def resolve_ctranslate2_device(requested: str) -> Device:
    """Like `resolve_device`, but for CTranslate2 models, without importing torch.

    "auto" picks CUDA only when CTranslate2 can really use it (and logs why not otherwise);
    "cuda" that cannot work raises MediaError(MODEL_UNAVAILABLE) instead of aborting later.
    """
    if requested == "cpu":
        return "cpu"
    if requested not in ("auto", "cuda"):
        raise MediaError(ErrorCode.MODEL_UNAVAILABLE, f"unknown device {requested!r}: use auto, cpu or cuda")
    check = ctranslate2_cuda_ok()
    if check.ok:
        return "cuda"
    if requested == "cuda":
        raise MediaError(
            ErrorCode.MODEL_UNAVAILABLE,
            f"CUDA is not available for Whisper: {check.reason}; use --device cpu",
        )
    # A GPU that is there but unusable is a setup problem worth a warning; no GPU at all is normal.
    (log.warning if check.devices else log.debug)("using the CPU for Whisper: %s", check.reason)
    return "cpu"


def pin_blas_threads(threads: int) -> None:
    """Process-wide: numpy's BLAS (OpenBLAS) uses `threads` threads from now on.

    Why: Whisper's mel spectrogram is a numpy matmul, and OpenBLAS sums in another order with another
    thread count, so the same audio gave different words ("...ever have." with 2 threads, "...ever had."
    with 1) in the in-process engine (BLAS threads = cores) and in Ray workers (OMP_NUM_THREADS=1). Pinning
    it where the models are loaded makes every engine compute the same thing. Not restored on purpose: a
    per-call limit would race between worker threads of one process.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")
