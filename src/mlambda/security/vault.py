"""The platform's master keys, the envelope that uses them, and their rotation.

Rotation, without downtime: the source gives a new primary (a file source makes one; a command
is asked again), the envelope wraps with it from then on, every data key — artifacts' and
sealed secrets' — is re-wrapped under it while the old keys still open what they wrapped, and
only then may the source drop the old keys. The envelope's lock keeps a deploy that is sealing
from slipping between the swap and the re-wrapping.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from mlambda.security.crypto import Envelope, MasterKeyError
from mlambda.security.masterkey import KeySource, source_for
from mlambda.settings import Settings


class Vault:
    def __init__(self, source: KeySource) -> None:
        self.source = source
        self.envelope = Envelope(source.load())

    def describe(self) -> str:
        return self.source.describe()

    def rotate(self, rewrappers: dict[str, Callable[[], int]]) -> dict[str, object]:
        """Rotate the master key; ``rewrappers`` re-wrap one kind of data key each and say how
        many they re-wrapped. Returns a summary for the caller (no key material)."""
        started = time.monotonic()
        with self.envelope.lock:
            previous = self.envelope.keys.primary_id
            keys = self.source.rotate(self.envelope.keys)
            self.envelope.keys = keys
            counts = {name: rewrap() for name, rewrap in rewrappers.items()}
            self.source.finish(keys)
        return {
            "source": self.describe(),
            "previous": previous,
            "primary": keys.primary_id,
            "rewrapped": counts,
            "seconds": round(time.monotonic() - started, 3),
        }


def open_vault(settings: Settings) -> Vault:
    """The master keys, from the command, the variable or the key file (in that order)."""
    source = source_for(
        file=settings.master_key_path,
        env_value=settings.master_key,
        command=settings.master_key_command,
    )
    try:
        return Vault(source)
    except MasterKeyError as exc:
        raise RuntimeError(f"master key ({source.describe()}): {exc}") from None
