"""The shop owner's pages under ``/admin``: dashboard, products, orders, users.

Every page asks ``page.require_admin()`` first; the services check the admin role again
on every call, so a demoted admin's pages stop working at once.
"""

from fastapi import APIRouter

from pasar_web.pages.admin import dashboard, orders, products, users

router = APIRouter()
for module in (dashboard, products, orders, users):
    router.include_router(module.router, prefix="/admin")
