"""ORM models; importing this package registers every table on ``Base.metadata``."""

from connhub.models.base import Base
from connhub.models.connection import Connection, ConnectionSecret, Dependent, RateLimitBucket
from connhub.models.workspace import ApiToken, Membership, User, Workspace

__all__ = [
    "ApiToken",
    "Base",
    "Connection",
    "ConnectionSecret",
    "Dependent",
    "Membership",
    "RateLimitBucket",
    "User",
    "Workspace",
]
