"""``sensor_msgs/CompressedImage`` (jpeg, png) <-> RGB numpy with OpenCV, in image_transport's conventions.

``format`` is ``"jpeg"`` / ``"png"`` or compressed_image_transport's ``"<raw encoding>; <jpeg|png> compressed
<bgr8|bgra8|rgb8|rgba8|mono8>"``. OpenCV stores colour as BGR, so decoded pixels are BGR unless the format
names rgb8/rgba8 as the compressed encoding. Anything that does not decode into an 8-bit grey, colour or
colour+alpha image raises ``ImageConversionError`` with the reason.
"""

from __future__ import annotations

import array

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CompressedImage

from ros_nodes.image_conversion import ImageConversionError, check_rgb_frame

SUPPORTED_FORMATS = ("jpeg", "png")
_SIGNATURES = {"jpeg": b"\xff\xd8\xff", "png": b"\x89PNG\r\n\x1a\n"}
_ALIASES = {"jpg": "jpeg"}
_COMPRESSED_ENCODINGS = ("bgr8", "bgra8", "rgb8", "rgba8", "mono8")


def parse_format(text: str) -> tuple[str, str | None]:
    """``format`` -> (``"jpeg"`` | ``"png"``, the compressed encoding or None when the format names none)."""
    raw = text.strip().lower()
    _, sep, rest = raw.partition(";")
    words = (rest if sep else raw).split()
    kind = _ALIASES.get(words[0], words[0]) if words else ""
    if "compresseddepth" in raw:
        raise ImageConversionError(f"compressedDepth images are not supported (format {text!r})")
    if kind not in SUPPORTED_FORMATS:
        raise ImageConversionError(
            f"unsupported compressed format {text!r}; supported: {', '.join(SUPPORTED_FORMATS)} "
            "(or image_transport's '<encoding>; jpeg compressed bgr8')"
        )
    encoding = words[2] if len(words) == 3 and words[1] == "compressed" else None
    if encoding is not None and encoding not in _COMPRESSED_ENCODINGS:
        raise ImageConversionError(
            f"unsupported compressed encoding {encoding!r} in format {text!r}; "
            f"supported: {', '.join(_COMPRESSED_ENCODINGS)}"
        )
    return kind, encoding


def compressed_to_rgb(msg: CompressedImage) -> np.ndarray:
    """Decode a jpeg or png CompressedImage into a new contiguous ``uint8 [H, W, 3]`` RGB array."""
    kind, encoding = parse_format(msg.format)
    data = np.frombuffer(msg.data, dtype=np.uint8)
    signature = _SIGNATURES[kind]
    if data[: len(signature)].tobytes() != signature:
        raise ImageConversionError(
            f"format says {kind} but the {len(data)} bytes do not start with a {kind} signature "
            f"(first bytes {data[:8].tobytes().hex()})"
        )
    pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise ImageConversionError(f"OpenCV cannot decode the {len(data)}-byte {kind}: truncated or corrupt")
    if pixels.dtype != np.uint8:
        raise ImageConversionError(f"{kind} decodes to {pixels.dtype} pixels; only 8-bit is supported")
    if pixels.ndim == 2:
        return cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)
    channels = pixels.shape[2]
    if channels not in (3, 4):
        raise ImageConversionError(f"{kind} decodes to {channels} channels; expected 1, 3 or 4")
    if encoding in ("rgb8", "rgba8"):
        return np.ascontiguousarray(pixels[:, :, :3])
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB if channels == 3 else cv2.COLOR_BGRA2RGB)


def rgb_to_compressed(frame: np.ndarray, stamp: Time, frame_id: str, kind: str = "jpeg") -> CompressedImage:
    """Encode a ``uint8 [H, W, 3]`` RGB frame as compressed_image_transport does ("rgb8; jpeg compressed
    bgr8"): for cameras that publish ``image/compressed``, the tests and the benchmark."""
    if kind not in SUPPORTED_FORMATS:
        raise ValueError(f"kind must be one of {SUPPORTED_FORMATS}, got {kind!r}")
    check_rgb_frame(frame)
    ok, encoded = cv2.imencode(".jpg" if kind == "jpeg" else ".png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ImageConversionError(f"OpenCV could not encode a {frame.shape} frame as {kind}")
    msg = CompressedImage()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.format = f"rgb8; {kind} compressed bgr8"
    msg.data = array.array("B", encoded.tobytes())
    return msg
