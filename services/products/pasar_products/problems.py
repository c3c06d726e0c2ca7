"""Every way a Product-Service request can fail, as problem details."""

from __future__ import annotations

from pasar_kit.problems import Problem


class ProductNotFound(Problem):
    status = 404
    code = "product_not_found"
    title = "No such product"


class SkuTaken(Problem):
    status = 409
    code = "sku_taken"
    title = "Another product already has this SKU"


class StaleProduct(Problem):
    status = 412
    code = "precondition_failed"
    title = "The product changed since it was read"


class InsufficientStock(Problem):
    status = 409
    code = "insufficient_stock"
    title = "Stock cannot go below zero"


class UnknownProduct(Problem):
    status = 422
    code = "unknown_product"
    title = "Unknown or archived product"


class OutOfStock(Problem):
    status = 409
    code = "out_of_stock"
    title = "Not enough stock"


class ReservationConflict(Problem):
    status = 409
    code = "reservation_conflict"
    title = "This reservation id is already used for other items"


class ReservationNotFound(Problem):
    status = 404
    code = "reservation_not_found"
    title = "No such reservation"


class ReservationReleased(Problem):
    status = 409
    code = "reservation_released"
    title = "The reservation was released"


class ReservationExpired(Problem):
    status = 409
    code = "reservation_expired"
    title = "The reservation expired"


class ReservationTotalTooLarge(Problem):
    status = 422
    code = "reservation_total_too_large"
    title = "The reservation is worth more than the largest amount allowed"


class ImageNotFound(Problem):
    status = 404
    code = "image_not_found"
    title = "No such image"


class ImageTooLarge(Problem):
    status = 413
    code = "image_too_large"
    title = "The image file is too large"


class ImageTooManyPixels(Problem):
    status = 422
    code = "image_too_many_pixels"
    title = "The image has too many pixels"


class UnsupportedImage(Problem):
    status = 422
    code = "unsupported_image"
    title = "Not a JPEG, PNG or WebP image that can be read"


class TooManyImages(Problem):
    status = 409
    code = "too_many_images"
    title = "The product has as many images as allowed"


class SynonymNotFound(Problem):
    status = 404
    code = "synonym_not_found"
    title = "No such synonym rule"
