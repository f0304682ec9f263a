"""End-to-end recipes on real pretrained models (``reasonloop recipe NAME``).

Each recipe is a module with one entry point; importing this package imports no
model code (torch, transformers and peft load inside the entry points).
"""

__all__: list[str] = []
