"""List paging the way Google's list methods page: an opaque token that resumes after the
last item returned. One implementation for every room that pages a list held in memory
(Cloud Storage pages by object name instead: see labkit.storage.engine)."""

from __future__ import annotations

import base64


class BadPage(ValueError):
    """A page size or token the caller made up; rooms answer it in their error shape."""


def page_of(items: list, size: str | int | None, token: str | None,
            default_size: int) -> tuple[list, str | None]:
    """(the page, the next page's token or None). size 0/None means default_size."""
    if isinstance(size, str) and size and not (size.isascii() and size.isdigit()):
        raise BadPage(f"Invalid page size: {size!r}")
    try:
        start = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
    except (ValueError, UnicodeError):  # binascii.Error is a ValueError
        raise BadPage(f"Invalid page token: {token!r}") from None
    count = int(size or 0) or default_size
    end = start + count
    return items[start:end], (base64.urlsafe_b64encode(str(end).encode()).decode()
                              if end < len(items) else None)

