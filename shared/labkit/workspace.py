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
            write_atomic(path, secrets.token_urlsafe(32), replace=False)
        return path.read_text().strip()


def write_atomic(path: Path, text: str, *, replace: bool = True, mode: int = 0o600) -> None:
    """Readers in other processes see the old file or the whole new one, never a part.
    replace=False keeps an existing file (the first writer wins)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    try:
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if another process created it first
            except FileExistsError:
                pass
    finally:
        tmp.unlink(missing_ok=True)
