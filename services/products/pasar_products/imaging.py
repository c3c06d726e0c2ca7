"""Reading an uploaded image and making its variants (Pillow), with no I/O of its own.

What an upload is comes from its content as Pillow reads it, never from its file name or
the Content-Type the client sent. The size is checked from the header before any pixel
is decoded, so a small file declaring 20,000 x 20,000 pixels (a decompression bomb)
costs nothing. ``process_image`` is CPU work: callers run it in a worker thread.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from typing import Final

from PIL import ExifTags, Image, ImageOps

from pasar_products.problems import ImageTooManyPixels, UnsupportedImage

# Pillow's format name -> (content type, file extension).
FORMATS: Final = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}
CONTENT_TYPES: Final = {extension: content_type for content_type, extension in FORMATS.values()}

# Each variant fits in a square this many pixels wide, WebP, never enlarged. Largest
# first: each is made from the one before (cheaper than from the original).
VARIANTS: Final = {"full": 1200, "card": 480, "thumbnail": 160}
WEBP_QUALITY = 82
# EXIF orientations that turn the picture a quarter: width and height swap.
_QUARTER_TURNED = frozenset({5, 6, 7, 8})

_KEY = re.compile(
    r"(?P<prefix>[0-9a-f]{2})/(?P<hash>[0-9a-f]{64})/"
    r"(?P<name>original\.(?:jpg|png|webp)|(?:full|card|thumbnail)\.webp)"
)


def image_key(content_hash: str, name: str) -> str:
    """Where a file of the image with this hash is stored: ``ab/abcd…/card.webp``."""
    return f"{content_hash[:2]}/{content_hash}/{name}"


def variant_name(variant: str) -> str:
    return f"{variant}.webp"


def original_name(extension: str) -> str:
    return f"original.{extension}"


def is_image_key(key: str) -> bool:
    """Only keys ``image_key`` makes: no other path, so none can leave the store."""
    match = _KEY.fullmatch(key)
    return match is not None and match["hash"].startswith(match["prefix"])


def is_served_key(key: str) -> bool:
    """Keys ``GET /images/{key}`` answers: the WebP variants only. The original is kept
    (variants can be made again from it) but never served: it carries the upload's
    metadata as sent, EXIF with the GPS position of where a photo was taken included."""
    match = _KEY.fullmatch(key)
    return (
        match is not None
        and match["hash"].startswith(match["prefix"])
        and not match["name"].startswith("original.")
    )


def key_content_type(key: str) -> str:
    return CONTENT_TYPES[key.rsplit(".", 1)[1]]


@dataclass(frozen=True)
class ProcessedImage:
    """An upload that decoded: its original bytes as sent (stored, never served), and its
    WebP variants (served, with no metadata)."""

    content_hash: str  # SHA-256 of the original bytes, hex
    extension: str  # of the format Pillow found: jpg, png, webp
    content_type: str
    width: int  # of the original, upright (after its EXIF orientation)
    height: int
    original: bytes
    variants: dict[str, bytes]

    @property
    def files(self) -> dict[str, bytes]:
        """Every file to store, by key."""
        named = {original_name(self.extension): self.original} | {
            variant_name(variant): data for variant, data in self.variants.items()
        }
        return {image_key(self.content_hash, name): data for name, data in named.items()}


def process_image(data: bytes, *, max_pixels: int) -> ProcessedImage:
    """Decode ``data`` as JPEG, PNG or WebP, upright it, and make its variants.

    Raises ``UnsupportedImage`` for anything else (text, GIF, SVG, a truncated file) and
    ``ImageTooManyPixels`` beyond ``max_pixels``, both before decoding the pixels when
    the header tells. Metadata (EXIF, ICC, text chunks) is not carried into variants.
    """
    try:
        image = Image.open(io.BytesIO(data), formats=list(FORMATS))
    except Image.DecompressionBombError as exc:
        raise ImageTooManyPixels(f"The image has more than {max_pixels} pixels.") from exc
    except Exception as exc:
        # Pillow tells "not an image of these formats" in several exception types.
        raise UnsupportedImage("The file is not a JPEG, PNG or WebP image.") from exc
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise ImageTooManyPixels(
                f"The image is {width} x {height} pixels; at most {max_pixels} are allowed.",
                limit=max_pixels,
            )
        if image.format not in FORMATS:  # pragma: no cover - open() was limited to them
            raise UnsupportedImage("The file is not a JPEG, PNG or WebP image.")
        content_type, extension = FORMATS[image.format]
        try:
            if image.getexif().get(ExifTags.Base.Orientation, 1) in _QUARTER_TURNED:
                width, height = height, width
            upright = _upright(image)
            variants = _variants(upright)
        except Image.DecompressionBombError as exc:
            raise ImageTooManyPixels(f"The image has more than {max_pixels} pixels.") from exc
        except Exception as exc:
            # A header that reads but pixels that do not: truncated or corrupt data fails
            # in the decoder, in whatever way it fails.
            raise UnsupportedImage("The image data is damaged or incomplete.") from exc
    return ProcessedImage(
        content_hash=hashlib.sha256(data).hexdigest(),
        extension=extension,
        content_type=content_type,
        width=width,
        height=height,
        original=data,
        variants=variants,
    )


def _upright(image: Image.Image) -> Image.Image:
    """The decoded first frame, turned as its EXIF orientation says, in RGB or RGBA."""
    if image.format == "JPEG":
        # Decode no larger than the biggest variant needs: a JPEG can be scaled down by
        # up to 8 while decoding, far cheaper than decoding it whole.
        largest = max(VARIANTS.values())
        image.draft(None, (largest, largest))
    image.load()
    turned = ImageOps.exif_transpose(image)
    return _displayable(turned)


def _displayable(image: Image.Image) -> Image.Image:
    """RGB, or RGBA when the image has transparency: the modes WebP stores."""
    if image.mode in ("RGB", "RGBA"):
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit grey: scale to 8 bits (a plain convert would clip everything to white).
        return image.convert("I").point(lambda value: value * (1 / 256)).convert("RGB")
    transparent = image.mode in ("LA", "La", "PA", "RGBa") or (
        image.mode == "P" and "transparency" in image.info
    )
    return image.convert("RGBA" if transparent else "RGB")


def _variants(image: Image.Image) -> dict[str, bytes]:
    variants: dict[str, bytes] = {}
    source = image
    for variant, size in VARIANTS.items():
        resized = source.copy()
        resized.thumbnail((size, size), Image.Resampling.LANCZOS)  # never enlarges
        buffer = io.BytesIO()
        resized.save(buffer, "WEBP", quality=WEBP_QUALITY, method=4)
        variants[variant] = buffer.getvalue()
        source = resized
    return variants
