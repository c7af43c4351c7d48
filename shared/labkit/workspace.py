"""The workspace folder: all local state (tables, objects, models, jobs) lives here.

It survives kernel restarts; every notebook and the services process agree on it
through LAB_WORKSPACE (default: ~/.pmle-labs/workspace).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

DEFAULT_WORKSPACE = Path.home() / ".pmle-labs" / "workspace"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def from_env(cls) -> Workspace:
        root = Path(os.environ.get("LAB_WORKSPACE") or DEFAULT_WORKSPACE).expanduser().resolve()
        root.mkdir(parents=True, exist_ok=True)
        return cls(root)

    def path(self, *parts: str) -> Path:
        """A folder or file inside the workspace; parent folders are created."""
        target = self.root.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    @property
    def token(self) -> str:
        """The per-workspace secret every local service request must carry."""
        path = self.path("token")
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32))
        return path.read_text().strip()
