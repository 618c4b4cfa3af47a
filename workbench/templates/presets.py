r"""Preset chat templates for the common instruction formats, in Hugging Face's Jinja form.

Each renders `messages` (system, user, assistant turns), ends every assistant turn with the token
the model should stop on, and writes the generation prompt (the header of the next assistant
turn) when `add_generation_prompt` is set. String literals keep `\n` escapes so the source reads
well in the editor; block tags on their own lines are trimmed (trim_blocks, lstrip_blocks).
"""

from __future__ import annotations

CHATML = r"""{% for message in messages %}
{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}
{%- endfor %}
{% if add_generation_prompt %}
{{ '<|im_start|>assistant\n' }}
{%- endif %}"""

ALPACA = r"""{% if messages and messages[0]['role'] == 'system' %}
{{ messages[0]['content'] + '\n\n' }}
{%- set loop_messages = messages[1:] %}
{% else %}
{{ 'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n' }}
{%- set loop_messages = messages %}
{% endif %}
{% for message in loop_messages %}
{% if message['role'] == 'user' %}
{{ '### Instruction:\n' + message['content'] + '\n\n' }}
{%- elif message['role'] == 'assistant' %}
{{ '### Response:\n' + message['content'] + eos_token + '\n\n' }}
{%- endif %}
{% endfor %}
{% if add_generation_prompt %}
{{ '### Response:\n' }}
{%- endif %}"""

LLAMA3 = r"""{% for message in messages %}
{% if loop.first %}
{{ bos_token }}
{%- endif %}
{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{% if add_generation_prompt %}
{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}"""

MISTRAL = r"""{% if messages and messages[0]['role'] == 'system' %}
{% set system = messages[0]['content'] %}
{% set loop_messages = messages[1:] %}
{% else %}
{% set system = '' %}
{% set loop_messages = messages %}
{% endif %}
{{ bos_token }}
{%- for message in loop_messages %}
{% if message['role'] == 'user' %}
{% if loop.first and system %}
{{ '[INST] ' + system + '\n\n' + message['content'] + ' [/INST]' }}
{%- else %}
{{ '[INST] ' + message['content'] + ' [/INST]' }}
{%- endif %}
{% elif message['role'] == 'assistant' %}
{{ message['content'] + eos_token }}
{%- endif %}
{% endfor %}"""

GEMMA = r"""{% if messages and messages[0]['role'] == 'system' %}
{% set system = messages[0]['content'] | trim + '\n\n' %}
{% set loop_messages = messages[1:] %}
{% else %}
{% set system = '' %}
{% set loop_messages = messages %}
{% endif %}
{{ bos_token }}
{%- for message in loop_messages %}
{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}
{{ '<start_of_turn>' + role + '\n' + (system if loop.first else '') + message['content'] | trim + '<end_of_turn>\n' }}
{%- endfor %}
{% if add_generation_prompt %}
{{ '<start_of_turn>model\n' }}
{%- endif %}"""

PHI3 = r"""{% for message in messages %}
{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}
{%- endfor %}
{% if add_generation_prompt %}
{{ '<|assistant|>\n' }}
{%- endif %}"""

ZEPHYR = r"""{% for message in messages %}
{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}
{%- endfor %}
{% if add_generation_prompt %}
{{ '<|assistant|>\n' }}
{%- endif %}"""

VICUNA = r"""{% if messages and messages[0]['role'] == 'system' %}
{{ messages[0]['content'] + ' ' }}
{%- set loop_messages = messages[1:] %}
{% else %}
{{ "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions. " }}
{%- set loop_messages = messages %}
{% endif %}
{% for message in loop_messages %}
{% if message['role'] == 'user' %}
{{ 'USER: ' + message['content'] + ' ' }}
{%- elif message['role'] == 'assistant' %}
{{ 'ASSISTANT: ' + message['content'] + eos_token }}
{%- endif %}
{% endfor %}
{% if add_generation_prompt %}
{{ 'ASSISTANT:' }}
{%- endif %}"""

PRESETS: dict[str, str] = {
    "chatml": CHATML,
    "alpaca": ALPACA,
    "llama3": LLAMA3,
    "mistral": MISTRAL,
    "gemma": GEMMA,
    "phi3": PHI3,
    "zephyr": ZEPHYR,
    "vicuna": VICUNA,
}

# What each preset trains for one assistant turn, as text: "{content}" is the answer and
# "{eos}" the tokenizer's EOS, followed by whatever whitespace the template writes after it
# (as TRL's completion-only loss trains). Tests check the trained tokens decode to exactly this.
TRAINED_TEXT: dict[str, str] = {
    "chatml": "{content}<|im_end|>\n",
    "alpaca": "{content}{eos}\n\n",
    "llama3": "{content}<|eot_id|>",
    "mistral": "{content}{eos}",
    "gemma": "{content}<end_of_turn>\n",
    "phi3": "{content}<|end|>\n",
    "zephyr": "{content}{eos}\n",
    "vicuna": " {content}{eos}",
}
