"""Import-time shim for the CPU-only ai-toolkit test venv (NOT part of torchaudio or ai-toolkit; lora-nb test tooling).

Why: ai-toolkit's toolkit/config_modules.py does `import torchaudio` at the top, so every job imports it, although
image LoRA training never calls it. ai-toolkit's README pairs torch 2.13.0 with torchaudio 2.11.0; PyPI's
torchaudio 2.11.0 wheel is a CUDA build whose `_torchaudio.abi3.so` links libc10_cuda.so, and torchaudio's
`_extension/__init__.py` loads it unconditionally, so beside the CPU torch `import torchaudio` dies with
"OSError: Could not load this library: .../_torchaudio.abi3.so".

What: when `torchaudio._extension.utils` is imported, its `_load_lib` is wrapped so that a library that fails to
load with OSError counts as "not built" (False), which is torchaudio's own answer for an install without its C++
extension. All of torchaudio's Python code is the real code; only its compiled ops are unavailable.
Activated by torchaudio_cpu_shim.pth in the same site-packages folder.
"""
import importlib.abc
import importlib.util
import sys

TARGET = "torchaudio._extension.utils"


class _TorchaudioCpuShim(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != TARGET:
            return None
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass
        try:
            spec = importlib.util.find_spec(name)
            if spec is None or spec.loader is None:
                return spec
            exec_module = spec.loader.exec_module

            def exec_and_wrap(module):
                exec_module(module)
                real = module._load_lib

                def _load_lib(lib):
                    try:
                        return real(lib)
                    except OSError:   # a CUDA-built extension beside the CPU torch
                        return False

                module._load_lib = _load_lib

            spec.loader.exec_module = exec_and_wrap
            return spec
        except Exception as e:  # never break interpreter start-up
            print(f"torchaudio_cpu_shim: {type(e).__name__}: {e}", file=sys.stderr)
            return None


sys.meta_path.insert(0, _TorchaudioCpuShim())
