"""Strike requests of the measured phase, encoded with only what varies re-encoded.

A strike is ``{"op": "strike", "raid_id", "action", "team": [character], "rid",
"strike_id"}``. For one client and one action everything up to the character is the same
bytes every time, and each character's bytes are the same every time it is used: the
MessagePack map is assembled from those cached pieces plus the rid and the strike id, the
only parts packed per strike (about a third of packing the whole dict). JSON runs (not
the benchmark's format) are encoded whole.
"""

from __future__ import annotations

import json

import msgpack

_OP = "strike"


class StrikeEncoder:
    """The strike requests of one client (``strike_id`` = ``prefix`` + strike number)."""

    def __init__(self, fmt: str, raid_id: str, actions: tuple[str, ...], prefix: str) -> None:
        self.is_text = fmt == "json"  # JSON goes in text frames
        self.raid_id = raid_id
        self.actions = actions  # the --mix pattern; strike n uses actions[n % len]
        self.prefix = prefix
        pack = msgpack.Packer().pack
        self._pack = pack  # one Packer for the per-strike parts (packb makes one per call)
        self._heads = tuple(  # map header, op, raid_id, action, "team" and its array header
            b"\x86"
            + pack("op")
            + pack(_OP)
            + pack("raid_id")
            + pack(raid_id)
            + pack("action")
            + pack(action)
            + pack("team")
            + b"\x91"
            for action in actions
        )
        self._rid_key = pack("rid")
        self._strike_id_key = pack("strike_id")
        self._characters: dict[str, bytes] = {}  # character id -> its packed bytes

    def strike_id(self, n: int) -> str:
        return self.prefix + str(n)

    def encode(self, n: int, character: str) -> bytes:
        """Strike number ``n`` (also its rid) with ``character``."""
        if self.is_text:
            return json.dumps(self.as_dict(n, character), separators=(",", ":")).encode()
        packed = self._characters.get(character)
        if packed is None:
            packed = self._characters[character] = self._pack(character)
        pack = self._pack
        return b"".join(
            (
                self._heads[n % len(self._heads)],
                packed,
                self._rid_key,
                pack(n),
                self._strike_id_key,
                pack(self.prefix + str(n)),
            )
        )

    def as_dict(self, n: int, character: str) -> dict[str, object]:
        """The same request as a dict (JSON, and the tests' reference)."""
        return {
            "op": _OP,
            "rid": n,
            "raid_id": self.raid_id,
            "action": self.actions[n % len(self.actions)],
            "team": [character],
            "strike_id": self.prefix + str(n),
        }
