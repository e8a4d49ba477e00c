"""Decode and encode video with PyAV. Every other layer reads and writes media through here."""

from rereel.errors import MediaError
from rereel.media.decode import DecodedFrame, decode_frames, frame_to_rgb
from rereel.media.encode import VideoWriter
from rereel.media.fingerprint import fingerprint
from rereel.media.probe import VideoInfo, probe
from rereel.media.find import VIDEO_EXTENSIONS, find_videos

__all__ = [
    "DecodedFrame",
    "MediaError",
    "VIDEO_EXTENSIONS",
    "VideoInfo",
    "VideoWriter",
    "decode_frames",
    "find_videos",
    "fingerprint",
    "frame_to_rgb",
    "probe",
]
