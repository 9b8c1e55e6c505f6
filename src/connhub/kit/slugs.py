"""Kebab-case slugs from free-text names (unicode folded to ASCII)."""

from __future__ import annotations

import re
import unicodedata

_NON_SLUG = re.compile(r"[^a-z0-9]+")
SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"  # what slugify makes; workspaces require it
# What a client may choose for a connection (API.md section 3: lower-case, ``[a-z0-9-]+``).
CONNECTION_SLUG_PATTERN = r"^[a-z0-9-]+$"


def slugify(text: str, *, max_length: int = 200, fallback: str = "connection") -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _NON_SLUG.sub("-", ascii_text.lower()).strip("-")[:max_length].strip("-")
    return slug or fallback
