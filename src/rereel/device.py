"""Where networks run: CUDA, then Apple's MPS, then the CPU (its cores or a share; bfloat16 where native)."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path


# Device files a GPU driver makes on Linux: NVIDIA's, AMD ROCm's, WSL2's. Without any of them
# torch.cuda cannot find a GPU, so the choice is the CPU without importing torch, which costs
# 1.6 s of every command's start here (a quarter of a remake whose analysis is cached).
_GPU_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia", "/dev/kfd", "/dev/dxg")


def best_device(prefer: str | None = None) -> str:
    """'cuda', 'mps' or 'cpu'; `prefer` (or $REREEL_DEVICE) overrides the choice, once checked
    (`check_device`)."""
    prefer = prefer or os.environ.get("REREEL_DEVICE")
    if prefer:
        return check_device(prefer)
    if sys.platform.startswith("linux") and not any(os.path.exists(p) for p in _GPU_NODES):
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def check_device(device: str, here: bool = True) -> str:
    """`device` ("cpu", "cuda", "cuda:N", "mps", as PyTorch names them) if it is one, and (`here`)
    this machine has it; else a RereelError in one line (PyTorch's own errors come later, as
    tracebacks, after a library or a bar was made)."""
    from rereel.errors import RereelError

    kind, _, number = device.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (number and not number.isdigit()):
        raise RereelError(f"unknown device {device!r}: cpu, cuda (or cuda:N) or mps")
    if kind == "cpu" or not here:
        return device
    import torch

    if kind == "cuda" and not torch.cuda.is_available():
        raise RereelError(f"device {device!r}: no CUDA GPU that PyTorch can use here")
    if kind == "cuda" and number and int(number) >= torch.cuda.device_count():
        raise RereelError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s), numbered from 0")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise RereelError(f"device {device!r}: no Apple GPU (MPS) that PyTorch can use here")
    return device


@functools.cache  # a system call, and the scaler asks for every frame (via cpu_threads)
def cpu_cores() -> int:
    """The cores this process may run on."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def cpu_threads() -> int:
    """Threads this process's work may use: all its cores, or $REREEL_THREADS. The indexer's
    worker processes are given their share of the cores that way (`library.workers`): decoding,
    scaling and the networks then keep to it instead of each starting a thread per core."""
    try:
        return max(1, int(os.environ["REREEL_THREADS"]))
    except (KeyError, ValueError):
        return cpu_cores()


def keep_to_threads(threads: int) -> None:
    """Make this process keep to `threads` threads, before anything has started its own:
    decoding, scaling, OpenVINO and ONNX Runtime read it through `cpu_threads`, PyTorch through
    OMP_NUM_THREADS when it loads, and OpenCV is told. The indexer's worker processes and Ray's
    analyser actors each run on their share of the cores this way."""
    os.environ["REREEL_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(threads)
    import cv2

    cv2.setNumThreads(threads)


@functools.cache  # read once a process: every TransNetV2 detector asks
def cpu_has_native_bf16() -> bool:
    """Whether the CPU computes bfloat16 itself (AVX-512 BF16 or AMX, read from Linux's
    /proc/cpuinfo). Elsewhere PyTorch would emulate it, slower than float32."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def onnx_cpu_session(path: Path):
    """An ONNX Runtime session on the CPU, on all our cores, whose idle workers sleep.

    Sleeping, not spinning: spinning buys nothing for batches (67 vs 61-69 img/s, batch 32,
    2 cores) but steals a core from whatever runs beside a single-frame caller: the webcam
    mirror's frame took 57 ms p50 spinning against 25 ms not, with one busy process beside it
    (16-17 ms either way when idle). The encoder and the learning-to-see live path share it.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = cpu_threads()
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def cpu_precision() -> str:
    """'bf16' where the CPU computes bfloat16 itself (see `cpu_has_native_bf16`), else 'f32';
    $REREEL_PRECISION=f32 asks for float32 everywhere (the same features on every CPU)."""
    if os.environ.get("REREEL_PRECISION", "").lower() in ("f32", "fp32", "float32"):
        return "f32"
    return "bf16" if cpu_has_native_bf16() else "f32"


def openvino_cpu_model(path: Path, nchw: list[int] | None = None, mean: float = 0.0, std: float = 1.0,
                       precision: str = "f32", streams: int = 1):
    """An ONNX model compiled by OpenVINO for the CPU, on `cpu_threads()` threads, computing in
    `precision` ('f32' or 'bf16'); None when OpenVINO cannot be loaded here (the caller falls
    back: the encoder to ONNX Runtime, TransNetV2 to PyTorch).

    On EfficientNet-Lite0 (batch 32, 2 cores, this Xeon) float32 ran 162-165 images/s against
    ONNX Runtime's 58, with the same features (max difference 1e-5); bfloat16 (AMX) ran 294-408.
    'f32' is passed on as OpenVINO's precision hint: on a CPU with bfloat16 it would otherwise
    take bfloat16 unasked. 'bf16' on a CPU without it runs float32.

    For an image network, `nchw` is the model's input shape, -1 for the batch: the compiled
    model then takes RGB uint8 images [N, H, W, 3] and does `(x - mean) / std` and the
    transpose itself (in its own threads: in NumPy they cost a fifth of the network). Without
    it the model takes its inputs as exported (TransNetV2). `streams` > 1 compiles it to infer
    that many requests side by side (an AsyncInferQueue's), the threads shared among them. The
    compiled model is cached beside the ONNX file, which makes a load 0.3 s instead of 2.5."""
    # `import openvino` sends a usage event to Google Analytics from a forked process, every
    # time, unless the user has opted out in ~/intel (the openvino-telemetry package; only CI
    # runs are spared). rereel does not report on its users, and a fork from a process with
    # threads is unsafe: with that package masked, OpenVINO falls back to its own stub.
    if "openvino" not in sys.modules:
        sys.modules.setdefault("openvino_telemetry", None)
    try:
        import openvino as ov
        from openvino.preprocess import PrePostProcessor
    except ImportError:
        return None
    core = ov.Core()
    model = core.read_model(str(path))
    if nchw is not None:
        model.reshape({model.inputs[0].get_any_name(): nchw})
        ppp = PrePostProcessor(model)
        ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
        ppp.input().model().set_layout(ov.Layout("NCHW"))
        ppp.input().preprocess().convert_element_type(ov.Type.f32).mean(mean).scale(std)
        model = ppp.build()
    config = {"INFERENCE_NUM_THREADS": cpu_threads(), "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision}
    if streams > 1:  # requests inferred side by side (an AsyncInferQueue), the threads shared among them
        config |= {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": streams}
    if cpu_threads() < cpu_cores():
        # A process given a share of the cores (the indexer's workers) has other processes
        # beside it. OpenVINO pins the thread that infers to the first cores it may use, the
        # same first core in every such process: two workers then took turns on core 0 (each
        # image 33 ms against 17, one thread each, 2 cores) while core 1 idled.
        config["ENABLE_CPU_PINNING"] = False
    try:
        return core.compile_model(model, "CPU", {**config, "CACHE_DIR": str(path.parent / "openvino")})
    except RuntimeError:  # the cache folder cannot be written: compile without it
        pass
    try:
        return core.compile_model(model, "CPU", config)
    except RuntimeError:  # a CPU the plugin cannot compile for: the caller falls back
        return None


def export_onnx(model, example, path: Path, **options) -> None:
    """`torch.onnx.export` of `model` (on the CPU) to `path`, atomically: a concurrent run never
    loads half a file. It is written under a name of its own for each process and thread, made
    by the export itself, so with the permissions any file gets here (a cache folder may be
    shared), then renamed. `options` go to the exporter (names, dynamic axes)."""
    import threading
    import warnings

    import torch

    tmp = str(path.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp"))
    try:
        with warnings.catch_warnings(), torch.inference_mode(False):
            warnings.simplefilter("ignore")
            torch.onnx.export(model, example, tmp, opset_version=17, dynamo=False, **options)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def cache_dir() -> Path:
    """Derived artefacts (ONNX exports); never downloads, only what is built locally."""
    root = os.environ.get("REREEL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "rereel"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path
