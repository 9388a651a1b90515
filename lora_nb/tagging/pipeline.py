"""Tagging a list of images: decoding and resizing in worker threads, overlapped with batched inference.

The model never waits for the CPU as long as the workers keep up: while the session runs batch k,
the pool is already decoding the images of batches k+1 and k+2 (a bounded window, so memory stays
flat for any number of images).

>>> import tempfile, lora_nb.tagging.tiny as tiny
>>> from PIL import Image
>>> d = tempfile.mkdtemp(); tiny.build_tiny_tagger(d + "/tagger")
PosixPath('...tagger')
>>> Image.new("RGB", (50, 40), "red").save(d + "/a.png")
>>> [r.path.endswith("a.png") for r in tag_images([d + "/a.png"], d + "/tagger", general_threshold=0.0)]
[True]
"""
from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

from .labels import Labels, read_labels
from .options import TagOptions
from .select import TagResult, display_names, select_tags
from .session import TaggerSession, open_session

__all__ = ["Tagger", "tag_images", "TagResult", "BatchStats", "prefetched_batches"]


@dataclass
class BatchStats:
    """What one batch took: images, seconds of inference, seconds the model waited for decoded images."""

    images: int
    infer_s: float
    wait_s: float


class Tagger:
    """A loaded model with its labels and options; :meth:`run` tags paths in batches."""

    def __init__(self, model: str | os.PathLike[str], options: TagOptions | None = None, providers: list[str] | None = None) -> None:
        from .registry import model_files

        self.options = options or TagOptions()
        onnx_path, csv_path = model_files(model)
        self.labels: Labels = read_labels(csv_path)
        self.session: TaggerSession = open_session(onnx_path, providers)
        out = self.session.session.get_outputs()[0].shape
        if isinstance(out[-1], int) and out[-1] != len(self.labels):
            from ..errors import TaggerError

            raise TaggerError(f"The model has {out[-1]} outputs but selected_tags.csv lists {len(self.labels)} tags.",
                              fix="Use the selected_tags.csv that belongs to this model.")
        o = self.options
        self.names = (display_names(self.labels.rating, o), display_names(self.labels.general, o),
                      display_names(self.labels.character, o, True))

    @property
    def batch_size(self) -> int:
        return self.session.fixed_batch or self.options.batch_size

    def run(self, paths: Sequence[str | os.PathLike[str]], on_batch: Callable[[list[TagResult], BatchStats], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> Iterator[TagResult]:
        """Yield a result per path, in order; a broken image yields a result with ``error`` set and no tags."""
        import numpy as np

        from .preprocess import load_and_preprocess

        size, bs = self.session.size, self.batch_size
        for batch_paths, loaded, errors, waited in prefetched_batches(paths, lambda p: load_and_preprocess(p, size), bs,
                                                                      self.options.workers, should_stop, "lnb-tag-decode"):
            arrays = [a for a in loaded if a is not None]
            t1 = time.perf_counter()
            scores = self.session.run(np.stack(arrays)) if arrays else []
            infer = time.perf_counter() - t1
            results, k = [], 0
            for i, p in enumerate(batch_paths):
                if i in errors:
                    results.append(TagResult([], {}, None, p, error=errors[i]))
                else:
                    r = select_tags(scores[k], self.labels, self.options, self.names)
                    r.path = p
                    results.append(r)
                    k += 1
            if on_batch is not None:
                on_batch(results, BatchStats(len(batch_paths), infer, waited))
            yield from results


def prefetched_batches(paths: Sequence[str | os.PathLike[str]], load: Callable[[str], Any], batch_size: int, workers: int,
                       should_stop: Callable[[], bool] | None = None, thread_prefix: str = "lnb-decode",
                       window_batches: int = 3) -> Iterator[tuple[list[str], list[Any], dict[int, str], float]]:
    """The pipelined decode shared by the tagger and the captioners: ``load(path)`` runs in ``workers`` threads,
    up to ``window_batches`` batches ahead of the consumer, so the model works while the next images decode.

    Yields ``(batch paths, loaded items (None where loading failed), {index in batch: error}, seconds waited)``
    per batch, in order. ``should_stop`` is checked before each batch; when it is true, pending loads are
    cancelled and the generator ends (the batch before it was whole).

    >>> [b[0] for b in prefetched_batches(["a", "b", "c"], str.upper, 2, 1)]
    [['a', 'b'], ['c']]
    """
    paths = [str(p) for p in paths]
    window = batch_size * window_batches
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=thread_prefix) as pool:
        futures: list[Future[Any]] = []
        nxt = 0

        def fill() -> None:
            nonlocal nxt
            while nxt < len(paths) and len(futures) < window:
                futures.append(pool.submit(load, paths[nxt]))
                nxt += 1

        done = 0
        fill()
        while done < len(paths):
            if should_stop is not None and should_stop():
                for f in futures:
                    f.cancel()
                return
            batch_paths = paths[done:done + batch_size]
            t0 = time.perf_counter()
            loaded: list[Any] = []
            errors: dict[int, str] = {}
            for i, _ in enumerate(batch_paths):
                fut = futures.pop(0)
                try:
                    loaded.append(fut.result())
                except Exception as e:  # InvalidInput for broken files
                    loaded.append(None)
                    errors[i] = str(e)
            fill()                                  # keep the workers busy while the model runs this batch
            waited = time.perf_counter() - t0
            done += len(batch_paths)
            yield batch_paths, loaded, errors, waited


def tag_images(paths: Iterable[str | os.PathLike[str]], model: str | os.PathLike[str], providers: list[str] | None = None,
               **options: Any) -> list[TagResult]:
    """Tag images in this process and return their tags with scores (small jobs, scripts, tests).

    ``options`` are :class:`TagOptions` fields (thresholds, blacklist, trigger_words ...). For a whole
    dataset use ``ds.tag(...)``, which runs as a job and writes the captions.
    """
    tagger = Tagger(model, TagOptions(**options), providers)
    return list(tagger.run(list(paths)))
