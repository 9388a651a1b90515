"""Renting and paying for GPU hosts: the Vast.ai API (price, spend, stop), the cost of a queue, and the
SkyPilot task that brings up a Ray cluster of rented nodes.

Nothing here imports a cloud SDK at import time: the Vast.ai calls are plain HTTP (the same endpoints the
``vastai`` SDK uses) and SkyPilot is imported only by :mod:`lora_nb.cloud.sky_driver`, in the Python that
has it.
"""
