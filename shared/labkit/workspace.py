"""The workspace folder: all local state (tables, objects, models, jobs) lives here.

It survives kernel restarts; every notebook and the services process agree on it
through LAB_WORKSPACE (default: ~/.pmle-labs/workspace). It is private to its user
(0700): the token in it lets a process act as the learner on the local services.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from labkit.services.files import write_atomic

DEFAULT_WORKSPACE = Path.home() / ".pmle-labs" / "workspace"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def from_env(cls) -> Workspace:
        root = Path(os.environ.get("LAB_WORKSPACE") or DEFAULT_WORKSPACE).expanduser().resolve()
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if root.stat().st_mode & 0o077 and root.stat().st_uid == os.getuid():
            root.chmod(0o700)  # made by an older labkit, or under a loose umask
        return cls(root)

    def path(self, *parts: str) -> Path:
        """A folder or file inside the workspace; parent folders are created (0700)."""
        target = self.root.joinpath(*parts)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return target

    @property
    def token(self) -> str:
        """The per-workspace secret every local service request must carry."""
        path = self.path("token")
        if not path.exists():
            write_atomic(path, secrets.token_urlsafe(32), replace=False)
        return path.read_text().strip()

    @property
    def path_key(self) -> str:
        """A secret derived from the token that travels in URLs (STORAGE_EMULATOR_HOST's
        path prefix), for clients that send no credentials to an emulator. Derived, so a
        URL printed in a notebook's output does not reveal the token itself."""
        return hmac.new(self.token.encode(), b"labkit-path-key", hashlib.sha256).hexdigest()[:32]

    @property
    def tag(self) -> str:
        """A short stable name for this workspace: default bucket names carry it, so two
        workspaces on one machine never share a /gcs/BUCKET link."""
        return hashlib.sha256(str(self.root).encode()).hexdigest()[:6]
