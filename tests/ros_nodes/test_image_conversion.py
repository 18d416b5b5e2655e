"""sensor_msgs/Image <-> RGB numpy without cv_bridge: every accepted encoding, padding, and the rejections."""

from __future__ import annotations

import array

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image

from ros_nodes.image_conversion import SUPPORTED_ENCODINGS, ImageConversionError, image_to_rgb, rgb_to_image

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)


def make_image(pixels: np.ndarray, encoding: str, pad: int = 0) -> Image:
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1)
    rows = np.concatenate([rows, np.full((height, pad), 77, np.uint8)], axis=1)
    msg = Image(height=height, width=width, encoding=encoding, step=rows.shape[1])
    msg.data = array.array("B", rows.tobytes())
    return msg


ENCODED = {
    "rgb8": RGB,
    "bgr8": RGB[:, :, ::-1],
    "rgba8": np.dstack([RGB, np.full(RGB.shape[:2], 9, np.uint8)]),
    "bgra8": np.dstack([RGB[:, :, ::-1], np.full(RGB.shape[:2], 9, np.uint8)]),
}


@pytest.mark.parametrize("encoding", sorted(ENCODED))
@pytest.mark.parametrize("pad", [0, 3])
def test_colour_encodings_decode_to_the_same_rgb(encoding: str, pad: int) -> None:
    out = image_to_rgb(make_image(ENCODED[encoding], encoding, pad))
    assert out.dtype == np.uint8 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, RGB)


def test_mono8_becomes_grey_rgb() -> None:
    grey = RGB[:, :, 0]
    out = image_to_rgb(make_image(grey[:, :, None], "mono8", pad=2))
    np.testing.assert_array_equal(out, np.repeat(grey[:, :, None], 3, axis=2))


def test_every_supported_encoding_is_tested() -> None:
    assert set(SUPPORTED_ENCODINGS) == {*ENCODED, "mono8"}


def test_round_trip_through_rgb8_is_lossless() -> None:
    msg = rgb_to_image(RGB, Time(sec=3, nanosec=4), "cam")
    assert (msg.encoding, msg.step, msg.header.frame_id, msg.header.stamp.sec) == ("rgb8", 21, "cam", 3)
    np.testing.assert_array_equal(image_to_rgb(msg), RGB)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda m: setattr(m, "encoding", "16UC1"), "unsupported image encoding '16UC1'"),
        (lambda m: setattr(m, "encoding", "yuv422"), "unsupported image encoding"),
        (lambda m: setattr(m, "encoding", ""), "unsupported image encoding ''"),
        (lambda m: setattr(m, "height", 0), "empty size"),
        (lambda m: setattr(m, "step", 20), "step 20 is smaller"),
        (lambda m: setattr(m, "data", m.data[:-1]), "data has 104 bytes"),
        (lambda m: setattr(m, "height", 6), "expected step\\*height"),
    ],
)
def test_malformed_images_raise_a_clear_error(mutate, message: str) -> None:
    msg = make_image(RGB, "rgb8")
    mutate(msg)
    with pytest.raises(ImageConversionError, match=message):
        image_to_rgb(msg)


def test_rgb_to_image_rejects_non_rgb_frames() -> None:
    with pytest.raises(ImageConversionError, match="uint8"):
        rgb_to_image(RGB.astype(np.float32), Time(), "cam")
    with pytest.raises(ImageConversionError, match="uint8"):
        rgb_to_image(RGB[:, :, :2], Time(), "cam")
