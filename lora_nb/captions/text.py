"""Caption text: tolerant decoding, tag splitting and the separator convention.

Pure functions, no files. A caption is a comma-separated tag list by default
(``"alice, 1girl, smile"``); each caption keeps the separator it was written with
(``", "`` or ``","``) when tags are added or removed.

>>> split_tags("alice,  1girl ,smile")
['alice', '1girl', 'smile']
>>> detect_separator("a,b,c")
','
>>> join_tags(["a", "b"], ", ")
'a, b'
>>> decode_caption(b"\\xef\\xbb\\xbfalice, smile\\r\\n")
'alice, smile'
"""
from __future__ import annotations

import codecs
import functools
import re

__all__ = ["decode_caption", "decode_legacy", "encode_caption", "split_tags", "join_tags", "detect_separator", "KAOMOJI",
           "caption_problem"]

DEFAULT_SEPARATOR = ", "
# WD14 tags whose underscores are part of the face, not word breaks.
KAOMOJI = frozenset({"0_0", "(o)_(o)", "+_+", "+_-", "._.", "<o>_<o>", "<|>_<|>", "=_=", ">_<", "3_3", "6_9",
                     ">_o", "@_@", "^_^", "o_o", "u_u", "x_x", "|_|", "||_||"})
_WS = re.compile(r"\s+")


def decode_caption(data: bytes) -> str:
    """Bytes of a caption file to text: BOMs dropped, UTF-16 understood, non-UTF-8 read as
    Windows-1252 (else Latin-1), CRLF and CR turned into LF, trailing newlines removed."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = decode_legacy(data)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.rstrip("\n")


def _cp1252_byte(b: int) -> str:
    try:
        return bytes((b,)).decode("cp1252")
    except UnicodeDecodeError:      # 0x81, 0x8d, 0x8f, 0x90, 0x9d: no Windows-1252 character, Latin-1's control
        return chr(b)


_LEGACY = [_cp1252_byte(b) for b in range(256)]


def decode_legacy(data: bytes, encoding: str | None = None) -> str:
    """Bytes that are not UTF-8 to text: with ``encoding``, decoded strictly with it; otherwise every valid
    UTF-8 sequence stays as it is and each other byte is read as Windows-1252 (Latin-1 where Windows-1252
    has no character), which is what editors on Windows write and also right for files that mix both.

    >>> decode_legacy(b"caf\\xe9, \\x93quoted\\x94")
    'café, “quoted”'
    >>> decode_legacy(b"caf\\xc3\\xa9 and na\\xefve")
    'café and naïve'
    """
    if encoding is not None:
        return data.decode(encoding)
    return data.decode("utf-8", errors=_HANDLER)


def _legacy_bytes(err: UnicodeError) -> tuple[str, int]:
    if not isinstance(err, UnicodeDecodeError):
        raise err
    return "".join(_LEGACY[b] for b in err.object[err.start:err.end]), err.end


_HANDLER = "lora-nb-cp1252"
codecs.register_error(_HANDLER, _legacy_bytes)


def encode_caption(text: str, newline: bool = False) -> bytes:
    """Text to the bytes lora-nb writes: UTF-8 without BOM, LF line ends."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.rstrip("\n")
    return (text + "\n" if newline else text).encode("utf-8")


def caption_problem(data: bytes) -> str | None:
    """Why kohya would choke on (or misread) these caption bytes, or None.

    kohya reads captions as strict UTF-8, uses the first line only and refuses empty files.
    """
    if data.startswith(b"\xef\xbb\xbf") or data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "starts with a byte-order mark"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "is not UTF-8"
    if not text.strip():
        return "is empty"
    if "\n" in text.strip("\r\n"):
        return "has more than one line (kohya reads only the first)"
    return None


def split_tags(text: str, sep: str = ",") -> list[str]:
    """The tags of a caption: split on the separator, stripped, empty pieces dropped."""
    core = sep.strip() or sep
    return [t for t in map(str.strip, text.split(core)) if t]


def join_tags(tags: list[str], sep: str = DEFAULT_SEPARATOR) -> str:
    return sep.join(tags)


def detect_separator(text: str, default: str | None = DEFAULT_SEPARATOR, core: str = ",") -> str | None:
    """The separator a caption was written with: ``", "`` or ``","`` (``default`` when it has none
    or mixes styles)."""
    n = text.count(core)
    if not n:
        return default
    spaced_sep, odd = _separator_forms(core)
    spaced = text.count(spaced_sep)
    oddly = odd[0] in text or odd[1] in text or odd[2] in text
    if not oddly and spaced == n - text.endswith(core):
        return spaced_sep
    if not spaced and not oddly:
        return core
    return default if default is not None else spaced_sep


@functools.lru_cache(maxsize=16)
def _separator_forms(core: str) -> tuple[str, tuple[str, str, str]]:
    return core + " ", (core + "  ", core + "\t", core + "\n")


def normalize_text(text: str, sep: str) -> str:
    """Whitespace cleaned: one line, single spaces, tags stripped, empty tags dropped."""
    core = sep.strip() or sep
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    if core in text:
        joined = sep.join(lines)
        return sep.join(_WS.sub(" ", t) for t in split_tags(joined, sep))
    return _WS.sub(" ", " ".join(lines)).strip()
