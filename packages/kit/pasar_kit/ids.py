"""One rule for the ids a client sends, in every service: 1..36 of ``A-Z a-z 0-9 -``.

The UUIDs the services issue fit it. In a body an id outside the rule is a 422 on its
field (``IdText``); in a path it names nothing, so the route answers its own 404 at once
(``is_id``), without a query and without echoing the id back (it may be 10,000
characters long). Ids are taken exactly as sent: nothing is trimmed.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints

ID_PATTERN = r"^[A-Za-z0-9-]{1,36}$"
ID_DESCRIPTION = "1..36 of A-Z a-z 0-9 and -"
IdText = Annotated[str, StringConstraints(min_length=1, max_length=36, pattern=ID_PATTERN)]

_ID = re.compile(ID_PATTERN)


def is_id(value: str) -> bool:
    """Whether ``value`` could be an id of ours (``re.ASCII`` is implied by the class)."""
    return _ID.fullmatch(value) is not None
