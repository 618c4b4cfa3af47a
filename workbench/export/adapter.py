"""The adapter alone: the LoRA weights and configs, with the tokenizer carrying the template.

For people who serve one base model with several adapters (vLLM, TGI, PEFT). The adapter files
are copied byte for byte; the tokenizer is saved beside them with the training template as its
chat_template, so `AutoTokenizer.from_pretrained(folder)` renders prompts as training did.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..templates.template import Template

ADAPTER_FILES = (
    "adapter_model.safetensors",
    "adapter_config.json",
    "template.json",
    "train_config.json",
    "base_model.json",
)


def save_adapter(adapter: Path, tokenizer, template: Template, out: Path) -> None:
    """Copy the adapter's files to `out` and save the tokenizer with the training template."""
    for name in ADAPTER_FILES:
        if (adapter / name).is_file():
            shutil.copy2(adapter / name, out / name)
    bound = template.with_tokenizer(tokenizer)
    tokenizer.chat_template = bound.serving_jinja  # no training-only marks
    tokenizer.save_pretrained(str(out))
    if not (out / "template.json").is_file():
        Template(bound.jinja, template.name, template.train_on).save(out)


def attach_export(peft_model, out: Path) -> None:
    """Load the exported adapter beside the original on the same base; make it the active one."""
    peft_model.load_adapter(str(out), adapter_name="exported")
    peft_model.set_adapter("exported")
    peft_model.eval()
