"""Natural-language captions with transformers: Florence-2 and JoyCaption (LLaVA), batched and pipelined.

The job model is the tagger's (:func:`lora_nb.tagging.pipeline.prefetched_batches`): worker threads open,
convert and preprocess the images of the next batches (the image processor runs there too) while the
model generates the captions of this batch; the prompt is tokenized once per batch size, not per image.
On a CUDA GPU the model runs in bf16, on the CPU in float32.

>>> import tempfile
>>> from PIL import Image
>>> from lora_nb.tagging.caption_tiny import build_tiny_florence2
>>> d = tempfile.mkdtemp(); model = build_tiny_florence2(d + "/florence")
>>> Image.new("RGB", (50, 40), "red").save(d + "/a.png")
>>> [r.path.endswith("a.png") and bool(r.text) for r in caption_images([d + "/a.png"], str(model), max_new_tokens=8)]
[True]
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from ..errors import InvalidInput, TaggerError
from .caption_models import (FLORENCE_TASKS, SYSTEM_PROMPT, captioner_folder, joycaption_prompt, max_new_tokens_for,
                             model_family)
from .caption_options import CaptionOptions, clean_sentence
from .pipeline import BatchStats, prefetched_batches

__all__ = ["Captioner", "CaptionResult", "caption_images", "pick_device", "runs_on_gpu"]


@dataclass
class CaptionResult:
    path: str
    text: str
    error: str | None = None


def runs_on_gpu() -> bool:
    """Whether a captioning job here would use a GPU (and so must hold a GPU slot): NVML sees one and torch is
    installed. Cheap: torch is not imported."""
    import importlib.util

    from ..nvml import device_indices

    return bool(device_indices()) and importlib.util.find_spec("torch") is not None


def pick_device(device: str | None = None) -> tuple[str, Any]:
    """(device, dtype): CUDA in bf16 when torch sees a GPU, else the CPU in float32 (``LORA_NB_CAPTION_DEVICE`` forces one)."""
    import torch

    device = device or os.environ.get("LORA_NB_CAPTION_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    return device, (torch.bfloat16 if device.startswith("cuda") else torch.float32)


def _rgb(path: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "LA") or "transparency" in im.info:
                rgba = im.convert("RGBA")
                flat = Image.new("RGB", rgba.size, (255, 255, 255))
                flat.paste(rgba, mask=rgba.split()[3])
                return flat
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise InvalidInput(f"{Path(path).name} is not a readable image ({e}).", fix="Remove or replace the file.") from None


class Captioner:
    """A loaded captioning model with its processor and options; :meth:`run` captions paths in batches."""

    def __init__(self, model: str | os.PathLike[str], options: CaptionOptions | None = None, device: str | None = None) -> None:
        self.folder: Path | None = captioner_folder(model)
        self.family = model_family(self.folder)
        self._configure(options)
        self.device, self.dtype = pick_device(device)
        self._load()
        self._text_cache: dict[int, dict[str, Any]] = {}

    @classmethod
    def from_loaded(cls, model: Any, processor: Any, options: CaptionOptions | None = None) -> "Captioner":
        """A Captioner around a model and processor already in memory, on the model's device and in its dtype
        (benchmarks: random full-size models built straight on the GPU, never saved)."""
        self = cls.__new__(cls)
        self.folder = None
        kind = getattr(model.config, "model_type", "")
        if kind not in ("florence2", "llava"):
            raise TaggerError(f"A '{kind}' model is not a captioner here.", fix="Use a Florence-2 or LLaVA (JoyCaption) model.")
        self.family = "florence2" if kind == "florence2" else "joycaption"
        self._configure(options)
        self.device, self.dtype = str(model.device), model.dtype
        self.processor, self.model = processor, model.eval()
        self._prepare()
        self._text_cache = {}
        return self

    def _configure(self, options: CaptionOptions | None) -> None:
        """Mode, prompt and token budget from the options, checked against the model family."""
        self.options = o = options or CaptionOptions()
        if self.family == "florence2":
            if o.mode and o.mode not in FLORENCE_TASKS:
                raise TaggerError(f"Florence-2 has no mode '{o.mode}'.", fix=f"Use one of: {', '.join(FLORENCE_TASKS)}.")
            if o.prompt:
                raise TaggerError("Florence-2 takes a task, not a free prompt.", fix="Leave prompt empty, or use JoyCaption.")
            self.mode = o.mode or "more_detailed"
            self.prompt = FLORENCE_TASKS[self.mode]
            self.max_new_tokens = o.max_new_tokens or (1024 if self.mode == "more_detailed" else 256)
        else:
            if o.mode in FLORENCE_TASKS:
                raise TaggerError(f"JoyCaption has no mode '{o.mode}' (that is a Florence-2 task).",
                                  fix="Use descriptive, descriptive_casual, straightforward, training_prompt or booru_list.")
            self.mode = o.mode or "descriptive"
            self.prompt = joycaption_prompt(self.mode, o.length, o.prompt or None)
            self.max_new_tokens = o.max_new_tokens or max_new_tokens_for(o.length)

    def _load(self) -> None:
        import transformers
        from transformers import AutoProcessor

        cls = transformers.Florence2ForConditionalGeneration if self.family == "florence2" else transformers.LlavaForConditionalGeneration
        try:
            self.processor = AutoProcessor.from_pretrained(self.folder)
            self.model = cls.from_pretrained(self.folder, dtype=self.dtype).to(self.device).eval()
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            raise TaggerError(f"The captioner in {self.folder} could not be loaded ({str(e).splitlines()[0][:200]}).",
                              fix="Download the model again, or check it was saved with save_pretrained (model and processor).") from None
        self._prepare()

    def _prepare(self) -> None:
        """Left padding (generation appends on the right), the chat-formatted prompt, no autograd."""
        import torch

        tok = self.processor.tokenizer
        tok.padding_side = "left"
        if self.family == "joycaption":
            convo = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "<image>\n" + self.prompt}]
            self.text = self.processor.apply_chat_template(convo, tokenize=False, add_generation_prompt=True)
        else:
            self.text = self.prompt
        torch.set_grad_enabled(False)

    @property
    def batch_size(self) -> int:
        return self.options.batch_size

    def _preprocess(self, path: str) -> Any:
        """In a worker thread: the image as the processor's pixel values (one image, numpy)."""
        image = _rgb(path)
        return self.processor.image_processor(images=[image], return_tensors="np")["pixel_values"][0]

    def _text_inputs(self, n: int) -> dict[str, Any]:
        """The tokenized prompt for ``n`` images, with the image placeholder tokens expanded (cached per n)."""
        if n not in self._text_cache:
            from PIL import Image

            side = self._image_side()
            dummy = [Image.new("RGB", (side, side))] * n
            enc = self.processor(text=[self.text] * n, images=dummy, return_tensors="pt", padding=True)
            self._text_cache[n] = {k: v for k, v in enc.items() if k != "pixel_values"}
        return self._text_cache[n]

    def _image_side(self) -> int:
        size = getattr(self.processor.image_processor, "size", None) or {}
        return int(size.get("height") or size.get("shortest_edge") or 384)

    def generate(self, pixel_values: Any) -> list[str]:
        """Captions for a stacked batch of pixel values (numpy, N x 3 x H x W)."""
        import torch

        n = len(pixel_values)
        inputs = {k: v.to(self.device) for k, v in self._text_inputs(n).items()}
        inputs["pixel_values"] = torch.from_numpy(pixel_values).to(self.device, self.dtype)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, num_beams=self.options.num_beams,
                                      do_sample=False)
        if self.family == "joycaption":
            out = out[:, inputs["input_ids"].shape[1]:]
        texts = self.processor.batch_decode(out, skip_special_tokens=True)
        return [clean_sentence(t) for t in texts]

    def run(self, paths: Sequence[str | os.PathLike[str]], on_batch: Callable[[list[CaptionResult], BatchStats], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> Iterator[CaptionResult]:
        """Yield a result per path, in order; a broken image yields a result with ``error`` set and no text."""
        import numpy as np

        for batch_paths, loaded, errors, waited in prefetched_batches(paths, self._preprocess, self.batch_size, self.options.workers,
                                                                      should_stop, "lnb-caption-decode"):
            arrays = [a for a in loaded if a is not None]
            t1 = time.perf_counter()
            texts = self.generate(np.stack(arrays)) if arrays else []
            infer = time.perf_counter() - t1
            results, k = [], 0
            for i, p in enumerate(batch_paths):
                if i in errors:
                    results.append(CaptionResult(p, "", errors[i]))
                else:
                    results.append(CaptionResult(p, texts[k]))
                    k += 1
            if on_batch is not None:
                on_batch(results, BatchStats(len(batch_paths), infer, waited))
            yield from results


def caption_images(paths: Iterable[str | os.PathLike[str]], model: str | os.PathLike[str], device: str | None = None,
                   **options: Any) -> list[CaptionResult]:
    """Caption images in this process and return the sentences (scripts, tests; no trigger words or policies).

    For a whole dataset use ``ds.caption(...)``, which runs as a job and writes the captions."""
    captioner = Captioner(model, CaptionOptions(**options), device)
    return list(captioner.run(list(paths)))
