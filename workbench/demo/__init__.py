"""The bundled demo data: seeded, verifiable task families and handwritten rows."""

from .tasks import DEMO_PATH, TASKS, demo_path, generate, is_verifiable, verify, write_jsonl

__all__ = ["DEMO_PATH", "TASKS", "demo_path", "generate", "is_verifiable", "verify", "write_jsonl"]
