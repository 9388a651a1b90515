"""Keep secrets out of job logs: replace every occurrence of a secret value in a byte stream.

Secrets can be split across two reads, so the redactor holds back the last
``len(longest secret) - 1`` bytes until more data (or the end) arrives.

>>> r = Redactor(["hf_abcdef"])
>>> r.feed(b"token=hf_ab") + r.feed(b"cdef ok\\n") + r.flush()
b'token=[secret] ok\\n'
"""
from __future__ import annotations

__all__ = ["Redactor", "MASK"]

MASK = b"[secret]"
MIN_SECRET = 6   # shorter values are not treated as secrets (they would mask ordinary words)


class Redactor:
    def __init__(self, secrets: list[str]) -> None:
        self.secrets = sorted({s.encode() for s in secrets if s and len(s) >= MIN_SECRET}, key=len, reverse=True)
        self.hold = max((len(s) for s in self.secrets), default=1) - 1
        self._buf = b""

    def _mask(self, data: bytes) -> bytes:
        for s in self.secrets:
            data = data.replace(s, MASK)
        return data

    def feed(self, data: bytes) -> bytes:
        if not self.secrets:
            return data
        data = self._mask(self._buf + data)
        if self.hold and len(data) > self.hold:
            self._buf, data = data[-self.hold:], data[:-self.hold]
        elif self.hold:
            self._buf, data = data, b""
        return data

    def flush(self) -> bytes:
        data, self._buf = self._mask(self._buf), b""
        return data
