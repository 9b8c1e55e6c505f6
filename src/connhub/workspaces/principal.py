"""Who is calling, in which workspace, with which role."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    viewer = "viewer"
    member = "member"
    admin = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Role.viewer: 0, Role.member: 1, Role.admin: 2}


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: uuid.UUID
    workspace_id: uuid.UUID
    role: Role
    email: str

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin

    def can(self, role: Role) -> bool:
        return self.role.rank >= role.rank
