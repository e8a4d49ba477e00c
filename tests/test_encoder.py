"""The default encoder loads real ImageNet weights and gives well-formed features."""

import numpy as np
import pytest
from PIL import Image

from conftest import require_module

from rereel.encoders import COLOUR_DIM, create_encoder, list_encoders
from rereel.media import decode_frames

skimage_data = require_module("skimage.data", "the dev extra: its standard test images")


def center_crop_224(img: np.ndarray) -> np.ndarray:
    """The standard ImageNet evaluation crop: shorter side to 256, centre 224."""
    im = Image.fromarray(img).convert("RGB")
    w, h = im.size
    s = 256 / min(w, h)
    im = im.resize((round(w * s), round(h * s)), Image.BICUBIC)
    w, h = im.size
    left, top = (w - 224) // 2, (h - 224) // 2
    return np.asarray(im.crop((left, top, left + 224, top + 224)))


@pytest.fixture(scope="module")
def encoder():
    return create_encoder("effnet-lite0")


def test_registry_lists_default():
    assert "effnet-lite0" in list_encoders()


def test_classifies_real_photos(encoder):
    # ImageNet-1k: 281-285 are the domestic cats (tabby, tiger cat, Persian, Siamese, Egyptian);
    # 967 is espresso. Random or wrongly loaded weights cannot pass both.
    photos = np.stack([center_crop_224(skimage_data.chelsea()), center_crop_224(skimage_data.coffee())])
    probs = encoder.classify(photos)
    assert 281 <= int(probs[0].argmax()) <= 285, probs[0].argsort()[-5:]
    assert int(probs[1].argmax()) == 967
    assert probs[1, 967] > 0.5


def test_cpu_backends_match_torch(encoder):
    """OpenVINO (the CPU default) and ONNX Runtime in float32 give PyTorch's features."""
    assert encoder.backend == ("openvino" if encoder.device == "cpu" else "torch")
    torch_enc = create_encoder("effnet-lite0", backend="torch", device="cpu")
    frames = np.stack([center_crop_224(skimage_data.astronaut()), center_crop_224(skimage_data.rocket())])
    b = torch_enc.embed(frames)
    for backend in ("openvino", "onnx"):
        a = create_encoder("effnet-lite0", backend=backend, device="cpu", precision="f32").embed(frames)
        assert np.abs(a.embedding - b.embedding).max() < 1e-3, backend
        assert np.abs(a.grid.astype(np.float32) - b.grid.astype(np.float32)).max() < 2e-2, backend
        assert np.array_equal(a.colour, b.colour), backend


def test_bfloat16_features_stay_near_float32s(archive):
    """Where the CPU computes bfloat16 (this machine's AMX) OpenVINO runs the encoder in it by
    default; its features of real frames must stay near float32's (PyTorch's), and name the same
    photos. Elsewhere 'bf16' runs float32, and this holds trivially."""
    from rereel.device import cpu_has_native_bf16, cpu_precision

    assert cpu_precision() == ("bf16" if cpu_has_native_bf16() else "f32")
    assert create_encoder("effnet-lite0", device="cpu").precision == cpu_precision()
    frames = [f.rgb(224, 224) for i, f in enumerate(decode_frames(archive / "ccby_bbb_film_first30s.webm")) if i % 25 == 0]
    frames += [center_crop_224(skimage_data.chelsea()), center_crop_224(skimage_data.coffee())]
    frames = np.stack(frames)
    f32 = create_encoder("effnet-lite0", backend="torch", device="cpu")
    bf16 = create_encoder("effnet-lite0", device="cpu", precision="bf16")
    a, b = bf16.embed(frames), f32.embed(frames)
    cos = (a.embedding * b.embedding).sum(1)
    assert cos.min() > 0.95 and np.median(cos) > 0.995, (cos.min(), np.median(cos))
    grid = (a.grid.astype(np.float32) * b.grid.astype(np.float32)).sum(1)  # mean cell cosine
    assert grid.min() > 0.9, grid.min()
    assert list(bf16.classify(frames[-2:]).argmax(1)) == list(f32.classify(frames[-2:]).argmax(1))


def test_a_process_given_one_core_is_not_pinned_to_a_core(monkeypatch):
    """The indexer's worker processes run one thread each (REREEL_THREADS=1). OpenVINO would pin
    the thread that infers to the first core it may use, the same core in every worker, so the
    workers' encoders took turns on one core. The inferring thread must keep every core."""
    import os
    import threading
    import time

    cores = os.sched_getaffinity(0)
    if len(cores) < 2:
        pytest.skip("one core: nothing to pin away from")
    monkeypatch.setenv("REREEL_THREADS", "1")
    enc = create_encoder("effnet-lite0", device="cpu")
    assert enc.backend == "openvino"
    me, seen, done = threading.get_native_id(), [], threading.Event()

    def watch():
        while not done.is_set():
            seen.append(os.sched_getaffinity(me))
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        frames = np.zeros((4, 224, 224, 3), np.uint8)
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            enc.embed(frames)
    finally:
        done.set()
        watcher.join()
    assert len(seen) > 50 and all(s == cores for s in seen), min(seen, key=len)


def test_loading_the_encoder_reports_nothing_to_openvinos_telemetry(tmp_path):
    """OpenVINO's import sends a usage event (openvino-telemetry) and counts it in ~/intel unless
    opted out; rereel's encoder must not. A fresh process with an empty home and no CI variable
    (CI runs are spared by the package itself) loads and runs the encoder: ~/intel stays absent."""
    import os
    import subprocess
    import sys

    from rereel.device import cache_dir

    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")}
    env |= {"HOME": str(tmp_path), "REREEL_CACHE": str(cache_dir())}  # the ONNX export already made
    code = ("import numpy as np; from rereel.encoders import create_encoder; "
            "e = create_encoder('effnet-lite0', device='cpu'); assert e.backend == 'openvino', e.backend; "
            "e.embed(np.zeros((1, 224, 224, 3), np.uint8)); import time; time.sleep(1)")
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    assert not (tmp_path / "intel").exists(), sorted(p.name for p in (tmp_path / "intel").iterdir())


def test_without_openvino_the_cpu_runs_onnx_runtime(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "openvino", None)  # an import of it now fails, as where it is not installed
    enc = create_encoder("effnet-lite0", device="cpu")
    assert enc.backend == "onnx"
    frames = np.stack([center_crop_224(skimage_data.chelsea())])
    assert int(enc.classify(frames)[0].argmax()) in range(281, 286)


def test_feature_shapes_and_norms(encoder):
    frames = np.stack([center_crop_224(skimage_data.chelsea())] * 3)
    f = encoder.embed(frames)
    assert f.embedding.shape == (3, 1280) and f.embedding.dtype == np.float32
    assert f.grid.shape == (3, 9 * 320) and f.grid.dtype == np.float16
    assert f.colour.shape == (3, COLOUR_DIM)
    for x in (f.embedding, f.grid.astype(np.float32), f.colour):
        assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-2)


def test_similar_images_are_closer(encoder):
    cat = center_crop_224(skimage_data.chelsea())
    cat_flipped = cat[:, ::-1].copy()
    coffee = center_crop_224(skimage_data.coffee())
    e = encoder.embed(np.stack([cat, cat_flipped, coffee])).embedding
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2
