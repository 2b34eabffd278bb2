"""The data directory: the admin key in it, and the modes that keep it the platform's own."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def secure_data_dir(data: Path, traversable: bool = False) -> None:
    """The data dir 0700 and what is in it 0600, whoever made them; unpacked bundles stay
    readable (the sandbox binds them). ``traversable`` (0711): instances that run under their
    own uid without a private root must reach their bundle by its path."""
    data.chmod(0o711 if traversable else 0o700)
    for root, dirs, files in os.walk(data):
        here = Path(root)
        if here == data / "cache" or (data / "cache") in here.parents:
            dirs[:] = []
            continue
        for name in dirs:
            (here / name).chmod(0o711 if traversable and name == "cache" else 0o700)
        for name in files:
            path = here / name
            if not path.is_symlink():
                path.chmod(0o600)


def load_or_create_key(path: Path) -> str:
    """The admin key: generated on first start, stored readable by its owner only."""
    if path.exists():
        key = path.read_text().strip()
        if key:
            return key
    key = "mlk_" + secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    os.chmod(path, 0o600)
    return key
