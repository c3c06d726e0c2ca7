"""What routes receive by injection, declared once.

All async: FastAPI runs a plain `def` dependency in a worker thread, which costs more
than the work itself.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from anyio import CapacityLimiter
from fastapi import Depends, Path, Query, Request

from pasar_kit.db import Database
from pasar_kit.ids import ID_DESCRIPTION, is_id
from pasar_kit.problems import Forbidden, Unauthorized
from pasar_products.bootstrap import Runtime
from pasar_products.listing import ListingCache
from pasar_products.problems import ImageNotFound, ProductNotFound, ReservationNotFound
from pasar_products.schemas import RESERVATION_ID_PATTERN
from pasar_products.search.lexicon import Lexicon
from pasar_products.settings import Settings
from pasar_products.storage import ImageStore

_RESERVATION_ID = re.compile(RESERVATION_ID_PATTERN)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _db(request: Request) -> Database:
    return _runtime(request).db


async def _settings(request: Request) -> Settings:
    return _runtime(request).settings


async def _listing(request: Request) -> ListingCache:
    return _runtime(request).listing


async def _images(request: Request) -> ImageStore:
    return _runtime(request).images


async def _image_work(request: Request) -> CapacityLimiter:
    return _runtime(request).image_work


async def _lexicon(request: Request) -> Lexicon:
    return _runtime(request).lexicon


async def _now(request: Request) -> datetime:
    # The service's clock, so tests can move time without sleeping.
    return _runtime(request).clock()


async def _include_archived(
    request: Request,
    include_archived: Annotated[
        bool, Query(description="Admins only (bearer token): list archived products too")
    ] = False,
) -> bool:
    """The public list is anonymous; only its archived view asks for an admin token.

    The header is read by hand: a declared security scheme would tell OpenAPI clients
    that the public list needs a token.
    """
    if not include_archived:
        return False
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Listing archived products needs an admin's bearer token.")
    principal = await _runtime(request).verifier.verify(token.strip())
    if not principal.is_admin:
        raise Forbidden("Only an admin may list archived products.")
    return True


# A path id outside the id rule names nothing: 404 at once, without a query and without
# echoing it (it may be 10,000 characters). Not a 422: a client holding a stale or
# mistyped link learns only that there is no such thing, as for any unknown id.
async def _product_id(product_id: Annotated[str, Path(description=ID_DESCRIPTION)]) -> str:
    if not is_id(product_id):
        raise ProductNotFound("No product has this id.")
    return product_id


async def _image_id(image_id: Annotated[str, Path(description=ID_DESCRIPTION)]) -> str:
    if not is_id(image_id):
        raise ImageNotFound("No image has this id.")
    return image_id


async def _reservation_id(
    reservation_id: Annotated[
        str, Path(description="1..64 of A-Z a-z 0-9 . _ : -, starting alphanumeric")
    ],
) -> str:
    if _RESERVATION_ID.fullmatch(reservation_id) is None:
        raise ReservationNotFound("No reservation has this id.")
    return reservation_id


DatabaseDep = Annotated[Database, Depends(_db)]
SettingsDep = Annotated[Settings, Depends(_settings)]
Now = Annotated[datetime, Depends(_now)]
ListingCacheDep = Annotated[ListingCache, Depends(_listing)]
ImageStoreDep = Annotated[ImageStore, Depends(_images)]
ImageWork = Annotated[CapacityLimiter, Depends(_image_work)]


LexiconDep = Annotated[Lexicon, Depends(_lexicon)]
IncludeArchived = Annotated[bool, Depends(_include_archived)]
ProductId = Annotated[str, Depends(_product_id)]
ImageId = Annotated[str, Depends(_image_id)]
ReservationId = Annotated[str, Depends(_reservation_id)]
