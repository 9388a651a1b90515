"""Training configuration: the TrainingConfig model, presets, the step calculator, kohya's buckets.

>>> from lora_nb.config import TrainingConfig
>>> TrainingConfig(dataset="alice", pretrained_model_name_or_path="/m.safetensors").engine
'kohya'
"""
from .model import FAMILIES, Subset, TrainingConfig
from .stepcalc import StepEstimate, steps

__all__ = ["TrainingConfig", "Subset", "FAMILIES", "steps", "StepEstimate"]
