"""The runner process: what runs after `python -m workbench.train RUN_DIR`, never in the kernel.

process.py reads the run folder and trains with the method's trainer (sft.py, dpo.py, reward.py,
grpo.py), all built alike (builders.py), with the callbacks that write metrics, probe answers
and keep drift (callbacks.py, keep_drift.py), the collators and chunked loss of SFT
(collate.py, loss.py) and the ranks of a multi-process run (ranks.py). The kernel side of
training (train/) prepares the folder and watches it; it imports nothing from here.
"""

from .process import main

__all__ = ["main"]
