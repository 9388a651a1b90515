"""ipywidgets panels over the lora_nb API (installed as ``lora_nb.widgets``). UI only."""
