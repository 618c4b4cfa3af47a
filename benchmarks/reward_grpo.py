"""Reward models and GRPO: outcome on a demo task, overhead against TRL by hand, reward accuracy.

Prints one JSON object with three parts (choose with --parts):

- outcome: held-out exact match of the base model, a short SFT run and GRPO (exact-match reward)
  started from that SFT adapter, with wall times, GRPO's settings and its reward curve. The
  target: SFT leaves the task between 20% and 80%, and GRPO raises it by at least 10 points
  within 15 minutes. Defaults: change_case after 24 SFT steps (~37%; arithmetic after 40 stays
  near 10%, below the band).
- overhead: steps per second of our runner against TRL's GRPOTrainer and RewardTrainer
  configured by hand with the same model, data and settings, one after the other (each in its
  own process). The target: ours within 1.1x.
- reward_model: held-out accuracy of a reward model trained on pairs built from the demo tasks
  (chosen: the right answer; rejected: another row's answer, or a non-answer). Target: >= 90%.

    python benchmarks/reward_grpo.py                 # the full CPU measurement (long)
    python benchmarks/reward_grpo.py --smoke         # tiny random model, a few steps: a check
    python benchmarks/reward_grpo.py --parts overhead --task arithmetic --grpo-minutes 5
    python benchmarks/reward_grpo.py --parts outcome --num-generations 8 --learning-rate 2e-4
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NON_ANSWERS = ("I don't know.", "Sure! Here is the answer.", "Can you rephrase the question?")
WARMUP_STEPS = 1
TARGETS = {
    "sft_exact_match_band": [0.2, 0.8],
    "grpo_gain_points": 10,
    "grpo_minutes": 15,
    "overhead_ratio": 1.1,
    "reward_model_held_out_accuracy": 0.9,
}


def correct_wrong_pairs(rows: list[dict], seed: int = 0) -> list[dict]:
    """Preference rows from demo rows: the right answer chosen; rejected another row's answer
    of the same task (a different one), or every third row a non-answer."""
    rng = random.Random(seed)
    by_task: dict[str, list[str]] = {}
    for row in rows:
        by_task.setdefault(row["task"], []).append(row["answer"])
    pairs = []
    for i, row in enumerate(rows):
        others = [a for a in by_task[row["task"]] if a != row["answer"]]
        wrong = rng.choice(NON_ANSWERS) if i % 3 == 2 or not others else rng.choice(others)
        pairs.append({"prompt": row["messages"][:-1], "chosen": row["answer"], "rejected": wrong})
    return pairs


# -- our runs -----------------------------------------------------------------------------------


def open_session(folder: Path, model: str, max_length: int):
    import workbench as wb

    s = wb.Session.open(folder / "ws")
    if model != "default":
        s.set_model(model)
    s.set_max_length(max_length)
    return s


def timed_run(session, config, preferences=None, minutes: float | None = None):
    """Start a run, wait for it (stopping it after `minutes`), return (run, wall seconds)."""
    started = time.time()
    run = session.train(config, preferences=preferences)
    status = run.wait(timeout=minutes * 60 if minutes else None)
    if status.active:
        status = run.stop(timeout=600)  # saves a checkpoint and the adapter
    if status.state not in ("finished", "stopped"):
        raise RuntimeError(f"{run.name} {status.state}: {status.message}\n{run.log_tail()}")
    return run, time.time() - started


def exact_match_of(session, models: list[str], max_new_tokens: int) -> dict[str, dict]:
    """Held-out exact match of each model on the eval split, with the time it took."""
    out = {}
    for name in models:
        started = time.time()
        score = session.evaluate(name, max_new_tokens=max_new_tokens).score
        out[name] = {"exact_match": round(score, 4), "eval_s": round(time.time() - started, 1)}
    return out


def outcome(args, tmp: Path) -> dict:
    """Base, SFT and GRPO held-out exact match on one demo task family, with wall times."""
    import workbench as wb
    from workbench import demo_data

    s = open_session(tmp / "outcome", args.model, args.max_length)
    rows = demo_data.generate(args.rows, seed=1, tasks=[args.task], handwritten=False)
    s.load_dataset(rows)
    s.split(eval_fraction=args.eval_fraction, seed=0)
    new = args.max_completion_length
    scores = {"base": exact_match_of(s, ["base"], new)["base"]}
    sft, sft_s = timed_run(s, wb.TrainConfig(method="lora", max_steps=args.sft_steps))
    scores["sft"] = exact_match_of(s, [sft.name], new)[sft.name] | {"train_s": round(sft_s, 1)}
    config = grpo_config(args, base_adapter=sft.name, max_steps=args.grpo_steps)
    grpo, grpo_s = timed_run(s, config, minutes=args.grpo_minutes)
    scores["grpo"] = exact_match_of(s, [grpo.name], new)[grpo.name] | {"train_s": round(grpo_s, 1)}
    low, high = TARGETS["sft_exact_match_band"]
    gain = 100 * (scores["grpo"]["exact_match"] - scores["sft"]["exact_match"])
    s.close()
    return {
        "task": args.task,
        "scores": scores,
        "grpo_steps_done": grpo.status.step,
        "grpo_settings": {k: grpo.info.train.to_json().get(k) for k in SETTINGS},
        "grpo_curve": curve(grpo.metrics),
        "sft_in_band": low <= scores["sft"]["exact_match"] <= high,
        "grpo_gain_points": round(gain, 1),
        "meets_target": gain >= TARGETS["grpo_gain_points"]
        and grpo_s <= 60 * TARGETS["grpo_minutes"] + 120,
    }


SETTINGS = ("learning_rate", "num_generations", "batch_size", "temperature", "beta")
"""The GRPO settings the outcome reports, as planned for the run."""


def grpo_config(args, **more):
    import workbench as wb

    return wb.TrainConfig(
        method="grpo",
        rewards=["exact_match"],
        num_generations=args.num_generations,
        max_completion_length=args.max_completion_length,
        batch_size=args.batch_size,
        beta=args.beta,
        learning_rate=args.learning_rate,
        **({"save_steps": 10_000} | more),
    )


def curve(metrics: list[dict]) -> list[dict]:
    """GRPO's per-step exact-match reward, KL, answer length and share cut (rounded)."""
    names = {
        "rewards/exact_match/mean": "exact_match",
        "kl": "kl",
        "completions/mean_length": "length",
        "completions/clipped_ratio": "clipped",
    }
    return [
        {"step": m["step"], **{short: round(m[k], 4) for k, short in names.items() if k in m}}
        for m in metrics
        if "loss" in m
    ]


def reward_model(args, tmp: Path) -> dict:
    """Held-out accuracy of a reward model on correct/wrong pairs from the demo tasks."""
    import workbench as wb
    from workbench import demo_data
    from workbench.train.reward_model import REWARD_FILE

    s = open_session(tmp / "reward", args.model, args.rm_max_length)
    rows = demo_data.generate(args.rm_rows, seed=2, handwritten=False)
    config = wb.TrainConfig(method="reward", max_steps=args.rm_steps, eval_steps=args.rm_steps)
    run, wall = timed_run(s, config, preferences=correct_wrong_pairs(rows))
    record = json.loads((run.adapter_path / REWARD_FILE).read_text())
    s.close()
    accuracy = record["held_out_accuracy"]
    return {
        "pairs": len(rows),
        "held_out_pairs": len(record["held_out_pairs"]),
        "held_out_accuracy": accuracy,
        "held_out_margin": record["held_out_margin"],
        "train_s": round(wall, 1),
        "meets_target": accuracy is not None
        and accuracy >= TARGETS["reward_model_held_out_accuracy"],
    }


# -- overhead: the same runs through TRL by hand ------------------------------------------------


def overhead(args, tmp: Path) -> dict:
    """Steps per second of our GRPO and reward runs against TRL's trainers set up by hand."""
    import workbench as wb
    from workbench import demo_data

    s = open_session(tmp / "overhead", args.model, args.max_length)
    rows = demo_data.generate(args.rows, seed=1, tasks=[args.task], handwritten=False)
    s.load_dataset(rows)
    s.split(eval_fraction=args.eval_fraction, seed=0)
    steps = args.overhead_steps
    quiet = {"eval_steps": 10_000, "save_steps": 10_000}  # as by hand: no evaluation, no saving
    grpo, _ = timed_run(s, grpo_config(args, max_steps=steps, **quiet))
    reward_config = wb.TrainConfig(method="reward", max_steps=steps, **quiet)
    reward, _ = timed_run(s, reward_config, preferences=correct_wrong_pairs(rows))
    result = {}
    for name, run in (("grpo", grpo), ("reward", reward)):
        ours = steps_per_s([m["time"] for m in run.metrics if "loss" in m])
        theirs = baseline(name, run.path)
        result[name] = {
            "ours_steps_per_s": ours,
            "trl_steps_per_s": theirs,
            "ratio": round(theirs / ours, 3) if ours else None,
        }
        result[name]["meets_target"] = (result[name]["ratio"] or 99) <= TARGETS["overhead_ratio"]
    s.close()
    return result


def steps_per_s(times: list[float]) -> float | None:
    """Steps per second between the end of warm-up and the last step."""
    if len(times) <= WARMUP_STEPS + 1:
        return None
    span = times[-1] - times[WARMUP_STEPS]
    return round((len(times) - 1 - WARMUP_STEPS) / span, 4)


def baseline(method: str, run_dir: Path) -> float | None:
    """TRL's trainer by hand on our run's data and settings, in its own process."""
    command = [sys.executable, __file__, "--baseline", method, str(run_dir)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"the TRL baseline failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["steps_per_s"]


def run_baseline(method: str, run_dir: str) -> None:
    """The TRL side of `overhead`: plain transformers, peft and TRL, no workbench trainer code."""
    import datasets
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

    info = json.loads((Path(run_dir) / "config.json").read_text())
    from workbench import models  # only to find the model's folder

    config = info["train"]
    model_path = models.resolve(models.ModelSpec.from_json(info["model"]))
    template = json.loads((Path(run_dir) / "template.json").read_text())["source"]
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    tokenizer.chat_template = template
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    times: list[float] = []

    class Times(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if "loss" in (logs or {}):
                times.append(time.time())

    common = {
        "output_dir": tempfile.mkdtemp(),
        "max_steps": config["max_steps"],
        "per_device_train_batch_size": config["batch_size"],
        "gradient_accumulation_steps": config["grad_accumulation"],
        "learning_rate": config["learning_rate"],
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "use_cpu": not torch.cuda.is_available(),
        "bf16": torch.cuda.is_available(),
        "seed": config["seed"],
        "gradient_checkpointing": False,
        "disable_tqdm": True,
    }
    lora = {"r": config["lora_r"], "lora_alpha": config["lora_alpha"]}
    lora.update(lora_dropout=config["lora_dropout"], target_modules=config["target_modules"])
    train = datasets.load_from_disk(str(Path(run_dir) / "data" / "train"))
    if method == "grpo":
        from trl import GRPOConfig, GRPOTrainer

        trainer = GRPOTrainer(
            model=AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32),
            reward_funcs=[exact_match],
            args=GRPOConfig(
                **common,
                num_generations=config["num_generations"],
                max_completion_length=config["max_completion_length"],
                temperature=config["temperature"],
                beta=config["beta"],
            ),
            train_dataset=train,
            processing_class=tokenizer,
            peft_config=LoraConfig(**lora, task_type="CAUSAL_LM"),
            callbacks=[Times()],
        )
    else:
        from transformers import AutoModelForSequenceClassification
        from trl import RewardConfig, RewardTrainer

        trainer = RewardTrainer(
            model=AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=1),
            args=RewardConfig(**common, max_length=None),
            train_dataset=train,
            processing_class=tokenizer,
            peft_config=LoraConfig(**lora, task_type="SEQ_CLS", modules_to_save=["score"]),
            callbacks=[Times()],
        )
    trainer.train()
    print(json.dumps({"steps_per_s": steps_per_s(times)}))


def exact_match(completions, reference, **_):
    """The baseline's exact-match reward, written the way a TRL user would."""
    texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
    return [float(t.strip().rstrip(".") == r.strip().rstrip(".")) for t, r in zip(texts, reference)]


# -- command line -------------------------------------------------------------------------------


def arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny random model, a few steps")
    parser.add_argument("--parts", nargs="+", default=["outcome", "overhead", "reward_model"])
    parser.add_argument("--model", default="default", help="'default' (embedded) or a path/id")
    parser.add_argument(
        "--task",
        default="change_case",
        help="the demo task family of outcome (change_case: 24 SFT steps leave it at ~37%%)",
    )
    parser.add_argument("--rows", type=int, default=600, help="rows of the task (train + eval)")
    parser.add_argument("--eval-fraction", type=float, default=0.1)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--sft-steps", type=int, default=24, help="SFT steps before GRPO")
    parser.add_argument("--grpo-steps", type=int, default=10_000, help="a cap; time ends it")
    parser.add_argument("--grpo-minutes", type=float, default=15.0)
    parser.add_argument("--num-generations", type=int, default=None, help="None: planned")
    parser.add_argument("--batch-size", type=int, default=None, help="None: planned")
    parser.add_argument("--max-completion-length", type=int, default=16)
    parser.add_argument("--beta", type=float, default=None, help="None: planned")
    parser.add_argument("--learning-rate", type=float, default=None, help="GRPO's; None: planned")
    parser.add_argument("--overhead-steps", type=int, default=24, help="steps timed per method")
    parser.add_argument("--rm-rows", type=int, default=600)
    parser.add_argument("--rm-steps", type=int, default=120)
    parser.add_argument(
        "--rm-max-length", type=int, default=256, help="a few demo pairs run past 128 tokens"
    )
    parser.add_argument("--baseline", nargs=2, help=argparse.SUPPRESS)  # internal: METHOD RUN_DIR
    args = parser.parse_args(argv)
    if args.smoke:
        args.rows, args.sft_steps, args.grpo_steps, args.grpo_minutes = 24, 2, 2, 5.0
        args.num_generations, args.batch_size, args.max_completion_length = 2, 4, 4
        args.overhead_steps, args.rm_rows, args.rm_steps, args.eval_fraction = 4, 24, 2, 0.25
        args.max_length = 128
    return args


def main(argv=None) -> None:
    args = arguments(argv)
    if args.baseline:
        return run_baseline(*args.baseline)
    started = time.time()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        if args.smoke:
            from benchmarks.random_llama import write_random_llama

            args.model = str(write_random_llama(tmp / "tiny", size="tiny"))
        report: dict = {"model": args.model, "smoke": args.smoke, "targets": TARGETS}
        parts = {"outcome": outcome, "overhead": overhead, "reward_model": reward_model}
        for name in args.parts:  # a part that fails is reported; the others still run
            try:
                report[name] = parts[name](args, tmp)
            except Exception as error:  # noqa: BLE001 - the report names it
                report[name] = {"error": f"{type(error).__name__}: {error}"}
            print(json.dumps({name: report[name]}), file=sys.stderr, flush=True)  # progress
    report["wall_s"] = round(time.time() - started, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
