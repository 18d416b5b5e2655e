"""sensor_msgs/CompressedImage (jpeg, png) -> RGB numpy: image_transport's format strings, channel orders,
and the rejections with their reasons."""

from __future__ import annotations

import array

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CompressedImage

from ros_nodes.compressed_image import compressed_to_rgb, parse_format, rgb_to_compressed
from ros_nodes.image_conversion import ImageConversionError

RGB = np.random.default_rng(0).integers(0, 256, (6, 9, 3), dtype=np.uint8)


def message(data: bytes, fmt: str) -> CompressedImage:
    return CompressedImage(format=fmt, data=array.array("B", data))


def encoded(pixels: np.ndarray, ext: str = ".png") -> bytes:
    ok, data = cv2.imencode(ext, pixels)
    assert ok
    return data.tobytes()


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("jpeg", ("jpeg", None)),
        ("JPG", ("jpeg", None)),
        ("png", ("png", None)),
        ("rgb8; jpeg compressed bgr8", ("jpeg", "bgr8")),
        ("bgra8; png compressed bgra8", ("png", "bgra8")),
        ("mono8; png compressed mono8", ("png", "mono8")),
    ],
)
def test_image_transport_formats_parse(fmt: str, expected: tuple[str, str | None]) -> None:
    assert parse_format(fmt) == expected


@pytest.mark.parametrize("fmt", ["png", "bgr8; png compressed bgr8"])
def test_png_is_lossless_and_bgr_becomes_rgb(fmt: str) -> None:
    out = compressed_to_rgb(message(encoded(RGB[:, :, ::-1]), fmt))
    assert out.dtype == np.uint8 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, RGB)


def test_rgb8_compressed_encoding_keeps_the_channel_order() -> None:
    out = compressed_to_rgb(message(encoded(RGB), "rgb8; png compressed rgb8"))
    np.testing.assert_array_equal(out, RGB)


def test_grey_and_alpha_pngs_become_rgb() -> None:
    grey = RGB[:, :, 0]
    out = compressed_to_rgb(message(encoded(grey), "mono8; png compressed mono8"))
    np.testing.assert_array_equal(out, np.repeat(grey[:, :, None], 3, axis=2))
    bgra = np.dstack([RGB[:, :, ::-1], np.full(RGB.shape[:2], 7, np.uint8)])
    np.testing.assert_array_equal(
        compressed_to_rgb(message(encoded(bgra), "bgra8; png compressed bgra8")), RGB
    )


def test_jpeg_round_trip_is_close() -> None:
    smooth = np.repeat(np.repeat(RGB, 8, axis=0), 8, axis=1)  # jpeg is lossy: compare a smooth image
    msg = rgb_to_compressed(smooth, Time(sec=2), "cam")
    assert (msg.format, msg.header.frame_id, msg.header.stamp.sec) == ("rgb8; jpeg compressed bgr8", "cam", 2)
    out = compressed_to_rgb(msg)
    assert out.shape == smooth.shape
    assert np.abs(out.astype(int) - smooth).mean() < 12  # the channel order is right (swapped: ~60)


PNG, JPEG = encoded(RGB), encoded(RGB, ".jpg")


@pytest.mark.parametrize(
    ("data", "fmt", "error"),
    [
        (PNG, "tiff", "unsupported compressed format 'tiff'"),
        (PNG, "", "unsupported compressed format ''"),
        (PNG, "16UC1; compressedDepth png", "compressedDepth images are not supported"),
        (PNG, "bgr8; png compressed yuv422", "unsupported compressed encoding 'yuv422'"),
        (JPEG, "png", "format says png but the .* bytes do not start with a png signature"),
        (PNG, "jpeg", "format says jpeg"),
        (b"", "jpeg", "format says jpeg but the 0 bytes"),
        (JPEG[:40], "jpeg", "OpenCV cannot decode the 40-byte jpeg"),
        (PNG[:40], "png", "OpenCV cannot decode the 40-byte png"),
        (encoded(RGB.astype(np.uint16) * 256), "png", "decodes to uint16 pixels; only 8-bit"),
    ],
)
def test_bad_compressed_images_raise_a_clear_error(data: bytes, fmt: str, error: str) -> None:
    with pytest.raises(ImageConversionError, match=error):
        compressed_to_rgb(message(data, fmt))


def test_rgb_to_compressed_rejects_non_rgb_frames() -> None:
    with pytest.raises(ImageConversionError, match="uint8"):
        rgb_to_compressed(RGB.astype(np.float32), Time(), "cam")
    with pytest.raises(ValueError, match="kind"):
        rgb_to_compressed(RGB, Time(), "cam", kind="bmp")
