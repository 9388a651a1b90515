"""Bringing files into a dataset: staged in the workspace's temp folder, renamed into place.

Every source (a ZIP, a folder, a list of paths or ``(name, bytes)`` pairs) becomes a
list of :class:`Entry`; :func:`stage` checks, sanitises, decodes and writes them into
a staging folder, and :func:`commit_new` / :func:`commit_into` move the result into
the dataset. A failure at any point leaves the dataset as it was.
"""
from __future__ import annotations

import os
import re
import shutil
import stat
import unicodedata
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Callable, Iterable, Union

from ..captions.text import decode_caption, encode_caption
from ..errors import AlreadyExists, InvalidInput, NotFound
from ..paths import MAX_NAME_LENGTH, safe_name
from .images import CAPTION_EXTS, IMAGE_EXTS, BrokenImage, inspect_image, normalized_bytes

if TYPE_CHECKING:  # pragma: no cover
    from ..ports import DatasetsHome
    from .dataset import Dataset

__all__ = ["Entry", "ImportLimits", "ImportResult", "zip_entries", "folder_entries", "item_entries", "stage",
           "commit_new", "commit_into", "sanitize_part"]

JUNK_NAMES = {"thumbs.db", "desktop.ini", "__macosx", ".ds_store"}
_SAME_FORMAT_EXTS = {"jpeg": {".jpg", ".jpeg"}, "png": {".png"}, "webp": {".webp"}, "bmp": {".bmp"}, "mpo": {".jpg", ".jpeg"}}
_REPEATS_DIR = re.compile(r"^\d+_")


@dataclass(frozen=True)
class ImportLimits:
    """Caps that keep a hostile archive from filling the disk."""

    max_entries: int = 50_000
    max_total_bytes: int = 32 * 1024**3      # uncompressed, all entries together
    max_file_bytes: int = 512 * 1024**2      # one entry, uncompressed
    max_ratio: float = 200.0                 # uncompressed / compressed, for entries above 1 MiB
    max_pixels: int = 120_000_000


@dataclass
class Entry:
    name: str                           # relative path as the source spells it
    read: Callable[[], bytes]
    size: int | None = None
    link_source: Path | None = None     # a real file we may link to instead of copying


@dataclass
class ImportResult:
    """What an import brought in and what it left out (with reasons)."""

    dataset: "Dataset | None" = None
    added: list[str] = field(default_factory=list)            # paths relative to the dataset
    captions: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)     # (name in the source, why)
    renamed: list[tuple[str, str]] = field(default_factory=list)     # (name in the source, new path)
    converted: list[tuple[str, str]] = field(default_factory=list)   # (new path, what was fixed)
    linked: int = 0

    @property
    def images(self) -> int:
        return len(self.added)

    def summary(self) -> str:
        parts = [f"{self.images} image{'s' * (self.images != 1)}", f"{self.captions} caption{'s' * (self.captions != 1)}"]
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        if self.renamed:
            parts.append(f"{len(self.renamed)} renamed")
        if self.converted:
            parts.append(f"{len(self.converted)} converted")
        return "Imported " + ", ".join(parts) + "."

    def __repr__(self) -> str:
        return f"ImportResult({self.summary()!r})"


# -- names -----------------------------------------------------------------------------
def sanitize_part(part: str, fallback: str = "file") -> str:
    """Make one path part acceptable to :func:`lora_nb.paths.safe_name` while keeping it readable."""
    s = unicodedata.normalize("NFKD", part).encode("ascii", "ignore").decode("ascii")
    s = re.sub(r"[^A-Za-z0-9 _.+()\[\]@,=~-]", "_", s)
    s = re.sub(r"\s+", " ", s).strip(" .")
    s = s.lstrip("._ -") or ""
    if not s or not s[0].isalnum():
        s = (fallback + ("_" + s if s else "")).strip(" .")
    if s.split(".")[0].lower() in {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}:
        s = "f_" + s
    s = s[:MAX_NAME_LENGTH].rstrip(" .")
    return safe_name(s, "file name")


def _hostile(name: str) -> str | None:
    norm = name.replace("\\", "/")
    if "\x00" in norm:
        return "contains a NUL byte"
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        return "is an absolute path"
    if ".." in PurePosixPath(norm).parts:
        return "contains '..' (it would escape the dataset)"
    return None


def _is_junk(parts: list[str]) -> bool:
    return any(p.startswith(".") or p.lower() in JUNK_NAMES for p in parts)


# -- sources ---------------------------------------------------------------------------
def open_zip(source: Union[str, os.PathLike, bytes, IO[bytes]]) -> zipfile.ZipFile:
    import io

    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            return zipfile.ZipFile(io.BytesIO(bytes(source)))
        if isinstance(source, (str, os.PathLike)):
            if not os.path.isfile(source):
                raise NotFound(f"There is no file {os.fspath(source)!r}.", fix="Check the path of the ZIP file.")
        return zipfile.ZipFile(source)  # type: ignore[arg-type]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
        raise InvalidInput(f"This is not a readable ZIP file ({e}).",
                           fix="Upload a .zip archive of images (and .txt captions).") from None


def zip_entries(zf: zipfile.ZipFile, limits: ImportLimits) -> list[Entry]:
    """The file entries of an archive, after the safety checks (raises InvalidInput for a hostile one)."""
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise InvalidInput(f"The archive has {len(infos)} entries; the limit is {limits.max_entries}.",
                           fix="Split it into smaller archives, or raise max_entries.")
    total = 0
    entries = []
    for info in infos:
        why = _hostile(info.filename)
        if why:
            raise InvalidInput(f"The archive entry {info.filename[:80]!r} {why}; the archive was not imported.",
                               fix="Re-create the archive from a plain folder of images.")
        mode = (info.external_attr >> 16) & 0o170000
        if mode == stat.S_IFLNK:
            raise InvalidInput(f"The archive entry {info.filename[:80]!r} is a symbolic link; the archive was not imported.",
                               fix="Re-create the archive without links (zip without -y).")
        if info.is_dir():
            continue
        if info.flag_bits & 0x1:
            raise InvalidInput(f"The archive entry {info.filename[:80]!r} is encrypted.", fix="Upload an archive without a password.")
        if info.file_size > limits.max_file_bytes:
            raise InvalidInput(f"The archive entry {info.filename[:80]!r} unpacks to {info.file_size:,} bytes; the limit per file is {limits.max_file_bytes:,}.",
                               fix="Remove that file from the archive, or raise max_file_bytes.")
        if info.file_size > 1024**2 and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise InvalidInput(f"The archive entry {info.filename[:80]!r} expands {info.file_size / max(info.compress_size, 1):,.0f} times (a ZIP bomb?); the archive was not imported.",
                               fix="Use an ordinary archive of images.")
        total += info.file_size
        if total > limits.max_total_bytes:
            raise InvalidInput(f"The archive unpacks to more than {limits.max_total_bytes:,} bytes; the archive was not imported.",
                               fix="Split it, or raise max_total_bytes.")

        def read(info: zipfile.ZipInfo = info) -> bytes:
            with zf.open(info) as f:
                data = f.read(limits.max_file_bytes + 1)
            if len(data) > limits.max_file_bytes:
                raise BrokenImage("it unpacks to more than the per-file limit")
            return data

        entries.append(Entry(info.filename, read, info.file_size))
    return entries


def folder_entries(folder: Path) -> list[Entry]:
    if not folder.is_dir():
        raise NotFound(f"There is no folder {str(folder)!r}.", fix="Check the path.")
    out = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d.lower() not in JUNK_NAMES)
        for fn in sorted(filenames):
            p = Path(dirpath) / fn
            rel = p.relative_to(folder).as_posix()
            out.append(Entry(rel, p.read_bytes, None, p))
    return out


def item_entries(items: Iterable) -> list[Entry]:
    """Entries from ``add_images`` items: paths (their same-stem captions come along) or (name, bytes|file)."""
    out: list[Entry] = []
    seen: set[Path] = set()
    for item in items:
        if isinstance(item, (str, os.PathLike)):
            p = Path(item)
            if not p.is_file():
                raise NotFound(f"There is no file {str(p)!r}.", fix="Check the path.")
            for q in [p] + [p.with_suffix(ext) for ext in CAPTION_EXTS]:
                if q not in seen and q.is_file():
                    seen.add(q)
                    out.append(Entry(q.name, q.read_bytes, None, q))
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            name, data = item
            if hasattr(data, "read"):
                data = data.read()
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise InvalidInput(f"The data for {name!r} is {type(data).__name__}, not bytes.", fix="Pass (name, bytes) pairs.")
            why = _hostile(name)
            if why:
                raise InvalidInput(f"The file name {name[:80]!r} {why}.", fix="Pass a plain file name.")
            data = bytes(data)
            out.append(Entry(name, lambda d=data: d, len(data)))
        else:
            raise InvalidInput(f"Cannot add {type(item).__name__} items to a dataset.",
                               fix="Pass file paths or (name, bytes) pairs.")
    return out


# -- staging ---------------------------------------------------------------------------
@dataclass
class _Group:
    dir: tuple[str, ...]
    stem: str
    images: list[Entry] = field(default_factory=list)
    captions: list[Entry] = field(default_factory=list)


def _plan(entries: list[Entry], result: ImportResult) -> list[_Group]:
    kept: list[tuple[list[str], Entry]] = []
    for e in entries:
        parts = [p for p in e.name.replace("\\", "/").split("/") if p not in ("", ".")]
        if not parts or _is_junk(parts):
            continue
        ext = os.path.splitext(parts[-1])[1].lower()
        if ext not in IMAGE_EXTS and ext not in CAPTION_EXTS:
            result.skipped.append((e.name, "not an image or a caption file"))
            continue
        kept.append((parts, e))
    # one common top folder that is not a kohya "N_concept" folder is the archive's wrapper: drop it
    tops = {parts[0] for parts, _ in kept if len(parts) > 1}
    if kept and len(tops) == 1 and all(len(p) > 1 for p, _ in kept) and not _REPEATS_DIR.match(next(iter(tops))):
        kept = [(parts[1:], e) for parts, e in kept]
    groups: dict[tuple, _Group] = {}
    for parts, e in kept:
        d = tuple(sanitize_part(p, "folder") for p in parts[:-1])
        stem, ext = os.path.splitext(parts[-1])
        key = (tuple(x.casefold() for x in d), stem.casefold())
        g = groups.setdefault(key, _Group(d, stem))
        (g.images if ext.lower() in IMAGE_EXTS else g.captions).append(e)
    return list(groups.values())


def _unique_stem(d: tuple[str, ...], stem: str, used: set[tuple]) -> str:
    base = sanitize_part(stem)
    cand, n = base, 1
    while (tuple(x.casefold() for x in d), cand.casefold()) in used:
        n += 1
        cand = f"{base[:MAX_NAME_LENGTH - 12]}_{n}"
    used.add((tuple(x.casefold() for x in d), cand.casefold()))
    return cand


def _existing_stems(root: Path | None) -> set[tuple]:
    used: set[tuple] = set()
    if root is None or not root.is_dir():
        return used
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = Path(dirpath).relative_to(root).parts
        for fn in filenames:
            used.add((tuple(x.casefold() for x in rel), os.path.splitext(fn)[0].casefold()))
    return used


def stage(entries: list[Entry], staging: Path, *, caption_ext: str | None = None, existing: Path | None = None,
          prefix: tuple[str, ...] = (), link: bool = False, limits: ImportLimits = ImportLimits(),
          progress: Callable[[int, int], None] | None = None, workers: int = 4) -> tuple[ImportResult, dict]:
    """Write the usable entries into ``staging``; return the result and primed image metadata.

    Captions are written with ``caption_ext`` (default: what most source captions use, else .txt).
    ``existing`` is the dataset folder being added to (its names are avoided).
    """
    result = ImportResult()
    groups = _plan(entries, result)
    if caption_ext is None:
        exts = [os.path.splitext(c.name)[1].lower() for g in groups for c in g.captions]
        caption_ext = ".caption" if exts.count(".caption") > exts.count(".txt") else ".txt"
    used = _existing_stems(existing)
    jobs = []
    for g in groups:
        if not g.images:
            for c in g.captions:
                result.skipped.append((c.name, "a caption without an image of the same name"))
            continue
        d = prefix + g.dir
        for i, img in enumerate(g.images):
            stem = _unique_stem(d, g.stem, used)
            caps = sorted(g.captions, key=lambda c: os.path.splitext(c.name)[1].lower() != caption_ext) if i == 0 else []
            for extra in caps[1:]:
                result.skipped.append((extra.name, f"a second caption file for {img.name}"))
            jobs.append((img, d, stem, caps[0] if caps else None))
    meta: dict[str, dict] = {}

    def work(job) -> tuple[str, str | None, dict | None, str | None, str | None, bool]:
        img, d, stem, cap = job
        ext = os.path.splitext(img.name)[1].lower()
        fixed = None
        try:
            data = img.read()
            info = inspect_image(data, max_pixels=limits.max_pixels)
            if info.needs_fix:
                data, ext = normalized_bytes(data)
                fixed = info.needs_fix
        except BrokenImage as e:
            return img.name, None, None, str(e), None, False
        except NotImplementedError as e:   # e.g. a ZIP compression method Python lacks
            return img.name, None, None, f"it cannot be unpacked ({e})", None, False
        except Exception as e:  # noqa: BLE001 - hostile input: whatever breaks, this file is skipped and listed
            return img.name, None, None, f"it cannot be read ({type(e).__name__}: {e})", None, False
        if fixed is None and ext not in _SAME_FORMAT_EXTS.get(info.format, ()):
            ext = info.ext
        folder = staging.joinpath(*d)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / (stem + ext)
        linked = False
        if link and img.link_source is not None and fixed is None and ext == os.path.splitext(img.name)[1].lower():
            os.symlink(os.path.abspath(img.link_source), target)
            linked = True
        else:
            with open(target, "xb") as f:
                f.write(data)
        if cap is not None:
            try:
                raw = cap.read()
            except Exception as e:  # noqa: BLE001 - same as for images
                result.skipped.append((cap.name, f"it cannot be read ({e})"))
            else:
                with open(folder / (stem + caption_ext), "xb") as f:
                    f.write(encode_caption(decode_caption(raw), newline=raw.endswith(b"\n")))
        rel = "/".join(d + (stem + ext,))
        m = {"w": info.width, "h": info.height, "f": info.format, "deep": fixed is None, "ph": info.phash,
             "o": info.orientation, "fix": info.needs_fix, "err": None}
        return img.name, rel, m, fixed, "caption" if cap is not None else None, linked

    done = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for name, rel, m, why, cap, linked in pool.map(work, jobs):
            done += 1
            if progress:
                progress(done, len(jobs))
            if rel is None:
                result.skipped.append((name, why or "unreadable"))
                continue
            result.added.append(rel)
            result.linked += linked
            if m is not None and m["deep"]:
                meta[rel] = m
            if why:
                result.converted.append((rel, why))
            if cap:
                result.captions += 1
            src = "/".join(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))
            if not src.endswith("/".join(rel.split("/")[len(prefix):])):
                result.renamed.append((name, rel))
    result.added.sort()
    if not result.added:
        reasons = "; ".join(f"{n}: {w}" for n, w in result.skipped[:3])
        raise InvalidInput("No usable image was found" + (f" ({reasons})." if reasons else "."),
                           fix="Provide PNG, JPEG, WEBP or BMP images (captions as .txt files with the same name).")
    return result, meta


def _prime_meta(folder: Path, meta: dict) -> None:
    """Store what staging learned about each image, so that the first report need not decode again."""
    from .meta import MetaCache

    cache = MetaCache(folder / ".lora-nb" / "meta.json")
    for rel, m in meta.items():
        try:
            cache.put(rel, os.stat(folder / rel), m)
        except OSError:
            pass
    cache.save()


def new_staging(ws: "DatasetsHome") -> Path:
    p = ws.tmp_dir / f"import-{uuid.uuid4().hex[:12]}"
    p.mkdir()
    return p


def commit_new(staging: Path, dest: Path, meta: dict) -> None:
    """Rename a staged folder into place as a new dataset."""
    if dest.exists():
        raise AlreadyExists(f"A dataset named '{dest.name}' already exists.", fix="Pick another name, or delete that dataset first.")
    _prime_meta(staging, meta)
    os.rename(staging, dest)


def commit_into(staging: Path, dest: Path, result: ImportResult, meta: dict) -> None:
    """Move staged files into an existing dataset, one rename each; on failure, move them back out."""
    moved: list[Path] = []
    made: list[Path] = []
    try:
        for path in sorted(p for p in staging.rglob("*") if p.is_file() or p.is_symlink()):
            rel = path.relative_to(staging)
            target = dest / rel
            for parent in reversed(rel.parents[:-1] if len(rel.parts) > 1 else []):
                d = dest / parent
                if not d.exists():
                    d.mkdir()
                    made.append(d)
            if target.exists() or target.is_symlink():
                raise AlreadyExists(f"{rel.as_posix()!r} appeared in the dataset during the import.", fix="Try again.")
            os.rename(path, target)
            moved.append(target)
    except BaseException:
        for t in reversed(moved):
            try:
                t.unlink()
            except OSError:
                pass
        for d in reversed(made):
            shutil.rmtree(d, ignore_errors=True)
        raise
    _prime_meta(dest, meta)
