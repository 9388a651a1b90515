"""Marker package: lets lora-nb's check() recognise this stand-in as an ai-toolkit checkout."""
