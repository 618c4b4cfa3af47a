"""Benchmark the dataset browser's core on a large chat JSONL file; prints JSON.

Three contenders, each measured in its own subprocess (so peak RSS is honest):
  ours      workbench.data.load_source + page / search / quality
  pandas    pandas.read_json(lines=True), iloc slicing, str.contains on exploded turns
  datasets  datasets.load_dataset("json") + a pyarrow substring match: the practical limit
Each is opened twice: first (nothing cached) and reopened in a fresh process (caches warm).

    python benchmarks/dataset_browser.py              # 1,000,000 rows, about 430 MB
    python benchmarks/dataset_browser.py --rows 20000 # small, for a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NEEDLE = "zebrafish"
PAGE_SIZE = 20
FLIPS = 50
WORDS = (  # noqa: SIM905  (a word list reads better as text)
    "the a of to and in is it you that he was for on are with as his they be at one have "
    "this from or had by hot word but what some we can out other were all there when up use "
    "your how said an each she which do their time if will way about many then them write "
    "would like so these her long make thing see him two has look more day could go come did "
    "number sound no most people my over know water than call first who may down side been "
    "now find any new work part take get place made live where after back little only round "
    "man year came show every good me give our under name very through just form sentence "
    "great think say help low line differ turn cause much mean before move right boy old too "
    "same tell does set three want air well also play small end put home read hand port "
    "large spell add even land here must big high such follow act why ask men change went "
    "light kind off need house picture try us again animal point mother world near build "
    "self earth father head stand own page should country found answer school grow study "
    "still learn plant cover food sun four between state keep eye never last let thought "
    "city tree cross farm hard start might story saw far sea draw left late run don't while "
    "press close night real life few north open seem together next white children begin got "
    "walk example ease paper group always music those both mark often letter until mile "
    "river car feet care second book carry took science eat room friend began idea fish "
    "mountain stop once base hear horse cut sure watch color face wood main enough plain "
    "girl usual young ready above ever red list though feel talk bird soon body dog family "
    "direct pose leave song measure door product black short numeral class wind question "
    "happen complete ship area half rock order fire south problem piece told knew pass since "
    "top whole king space heard best hour better true during hundred five remember step "
    "early hold west ground interest reach fast verb sing listen six table travel less "
    "morning ten simple several vowel toward war lay against pattern slow center love person "
    "money serve appear road map rain rule govern pull cold notice voice unit power town "
    "fine certain fly fall lead cry dark machine note wait plan figure star box noun field "
    "rest correct able pound done beauty drive"
).split()


# -- data -----------------------------------------------------------------------------------
def generate(path: Path, rows: int, seed: int = 0) -> None:
    """A chat JSONL file: 1-6 exchanges, an optional system turn, long-tailed lengths (about
    430 bytes a row on average), 1% of rows mention the needle, 1% repeat an earlier row."""
    rng = random.Random(seed)
    blob = " ".join(rng.choice(WORDS) for _ in range(400_000))
    written: list[str] = []
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            if written and rng.random() < 0.01:
                line = written[rng.randrange(len(written))]
            else:
                line = json.dumps({"messages": _conversation(rng, blob, i)}, ensure_ascii=False)
                if len(written) < 10_000:
                    written.append(line)
            f.write(line + "\n")


def _conversation(rng: random.Random, blob: str, i: int) -> list[dict]:
    turns = []
    if rng.random() < 0.15:
        turns.append({"role": "system", "content": _text(rng, blob, 31)})
    exchanges = 1 if rng.random() < 0.7 else rng.choice([2, 2, 2, 3, 4, 6])
    for _ in range(exchanges):
        turns.append({"role": "user", "content": _text(rng, blob, 35)})
        turns.append({"role": "assistant", "content": _text(rng, blob, 73)})
    if rng.random() < 0.01:
        turns[-1]["content"] += f" the {NEEDLE} row {i}"
    return turns


def _text(rng: random.Random, blob: str, median: int) -> str:
    length = min(int(rng.lognormvariate(0, 1.0) * median) + 1, 20_000)
    start = rng.randrange(len(blob) - length)
    return blob[start : start + length].strip() or "ok"


# -- contenders (each runs in its own process) ----------------------------------------------
def measure_ours(path: Path, work: Path, token_rows: int) -> dict:
    import datasets  # noqa: F401  (imports stay outside the timings, as for the others)

    from workbench.data import load_source

    started = time.perf_counter()
    ds = load_source(path, cache_dir=work / "cache")
    ds.page(0, PAGE_SIZE)
    opened = time.perf_counter() - started
    flip = _time_flips(lambda k: ds.page(k, PAGE_SIZE), len(ds))
    started = time.perf_counter()
    found = len(ds.search(NEEDLE))
    search = time.perf_counter() - started
    browse_rss = _peak_rss_mb()
    started = time.perf_counter()
    report = ds.quality(lengths=False)
    quality = time.perf_counter() - started
    out = _result(opened, flip, search, found, quality, browse_rss)
    out["quality_found"] = report.summary()
    if token_rows:
        out["token_lengths"] = _measure_tokens(path, work, token_rows)
    return out


def _measure_tokens(path: Path, work: Path, rows: int) -> dict:
    """Token-length stats of the first `rows` rows with the default model's tokenizer and own
    template: first time (tokenising) and again from the on-disk cache in a new dataset."""
    from workbench import models
    from workbench.data import load_source
    from workbench.templates import Template

    small = work / "token_rows.jsonl"
    with open(path, encoding="utf-8") as src, open(small, "w", encoding="utf-8") as dst:
        dst.writelines(line for _, line in zip(range(rows), src))
    template = Template.preset("model").with_tokenizer(models.load_tokenizer(models.DEFAULT))
    timings = []
    for _ in range(2):
        ds = load_source(small, cache_dir=work / "cache")
        ds.bind(template=lambda: template, max_length=lambda: 1024)
        started = time.perf_counter()
        stats = ds.stats()
        timings.append(time.perf_counter() - started)
    return {
        "rows": rows,
        "first_s": round(timings[0], 3),
        "cached_s": round(timings[1], 4),
        "rows_per_s": round(rows / timings[0]),
        "over_1024": stats.over_max_length,
    }


def measure_pandas(path: Path, work: Path, token_rows: int) -> dict:
    import pandas as pd

    started = time.perf_counter()
    df = pd.read_json(path, lines=True)
    df.iloc[0:PAGE_SIZE].to_dict("records")
    opened = time.perf_counter() - started
    flip = _time_flips(
        lambda k: df.iloc[k * PAGE_SIZE : (k + 1) * PAGE_SIZE].to_dict("records"), len(df)
    )
    started = time.perf_counter()
    turns = df["messages"].explode()
    content = turns.str["content"]
    hits = content.str.contains(NEEDLE, regex=False, na=False)
    found = len(hits[hits].index.unique())
    search = time.perf_counter() - started
    browse_rss = _peak_rss_mb()
    started = time.perf_counter()
    empty = content.fillna("").str.strip().eq("")
    empty_rows = len(empty[empty].index.unique())
    duplicates = int(df["messages"].map(json.dumps).duplicated().sum())
    quality = time.perf_counter() - started
    out = _result(opened, flip, search, found, quality, browse_rss)
    out["quality_found"] = {"empty_turn": empty_rows, "duplicate": duplicates}
    return out


def measure_datasets(path: Path, work: Path, token_rows: int) -> dict:
    import datasets
    import pyarrow.compute as pc

    datasets.disable_progress_bars()
    started = time.perf_counter()
    ds = datasets.load_dataset(
        "json", data_files=str(path), split="train", cache_dir=str(work / "hf")
    )
    ds[0:PAGE_SIZE]
    opened = time.perf_counter() - started
    flip = _time_flips(lambda k: ds[k * PAGE_SIZE : (k + 1) * PAGE_SIZE], len(ds))
    started = time.perf_counter()
    column = ds.data.table.column("messages")
    mask = pc.match_substring(pc.struct_field(pc.list_flatten(column), "content"), NEEDLE)
    found = len(pc.unique(pc.filter(pc.list_parent_indices(column), mask)))
    search = time.perf_counter() - started
    browse_rss = _peak_rss_mb()
    started = time.perf_counter()
    content = pc.struct_field(pc.list_flatten(column), "content")
    blank = pc.equal(pc.utf8_trim_whitespace(content), "")
    empty_rows = len(pc.unique(pc.filter(pc.list_parent_indices(column), blank)))
    joined = _joined_turns(column)
    counts = pc.value_counts(joined)
    duplicates = int(pc.sum(pc.subtract(counts.field("counts"), 1)).as_py() or 0)
    quality = time.perf_counter() - started
    out = _result(opened, flip, search, found, quality, browse_rss)
    out["quality_found"] = {"empty_turn": empty_rows, "duplicate": duplicates}
    return out


def _joined_turns(column):
    import pyarrow as pa
    import pyarrow.compute as pc

    chunks = []
    for chunk in column.chunks:
        flat = chunk.flatten()
        tagged = pc.binary_join_element_wise(flat.field("role"), flat.field("content"), "\x1f")
        offsets = pc.subtract(chunk.offsets, chunk.offsets[0])
        chunks.append(pc.binary_join(pa.ListArray.from_arrays(offsets, tagged), "\x1e"))
    return pa.chunked_array(chunks)


CONTENDERS = {"ours": measure_ours, "pandas": measure_pandas, "datasets": measure_datasets}


# -- helpers --------------------------------------------------------------------------------
def _time_flips(show_page, rows: int) -> float:
    pages = max(1, rows // PAGE_SIZE)
    rng = random.Random(1)
    started = time.perf_counter()
    for _ in range(FLIPS):
        show_page(rng.randrange(pages))
    return (time.perf_counter() - started) / FLIPS


def _peak_rss_mb() -> float:
    from workbench.resources import peak_rss_gb

    return round(peak_rss_gb() * 1024, 1)


def _result(opened, flip, search, found, quality, browse_rss) -> dict:
    return {
        "open_first_page_s": round(opened, 3),
        "page_flip_ms": round(flip * 1000, 2),
        "search_s": round(search, 3),
        "search_rows_found": found,
        "quality_s": round(quality, 3),
        "peak_rss_browse_mb": browse_rss,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _run(contender: str, path: Path, work: Path, token_rows: int) -> dict:
    command = [
        sys.executable,
        __file__,
        "--measure",
        contender,
        "--file",
        str(path),
        "--work",
        str(work),
        "--token-rows",
        str(token_rows),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:] or ["failed"]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--token-rows",
        type=int,
        default=20_000,
        help="rows tokenised for the token-length timing (0 to skip)",
    )
    parser.add_argument("--measure", choices=list(CONTENDERS), help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(CONTENDERS[args.measure](args.file, args.work, args.token_rows)))
        return
    with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmp:
        path = Path(tmp) / "chat.jsonl"
        started = time.perf_counter()
        generate(path, args.rows)
        result = {
            "rows": args.rows,
            "file_mb": round(path.stat().st_size / 2**20, 1),
            "generate_s": round(time.perf_counter() - started, 1),
        }
        for name in CONTENDERS:
            work = Path(tmp) / name
            work.mkdir()
            first = _run(name, path, work, args.token_rows if name == "ours" else 0)
            again = _run(name, path, work, 0)
            first["reopen_first_page_s"] = again.get("open_first_page_s")
            result[name] = first
        result["targets"] = _targets(result)
    print(json.dumps(result, indent=2))


def _targets(result: dict) -> dict:
    ours, raw = result["ours"], result["datasets"]
    if "error" in ours or "error" in raw:
        return {}
    return {
        "open_within_1.2x_of_datasets": ours["open_first_page_s"] <= 1.2 * raw["open_first_page_s"],
        "search_within_1.2x_of_datasets": ours["search_s"] <= 1.2 * raw["search_s"],
        "memory_within_1.2x_of_datasets": ours["peak_rss_browse_mb"]
        <= 1.2 * raw["peak_rss_browse_mb"],
        "reopen_under_0.2s": (ours["reopen_first_page_s"] or 99) < 0.2,
        "page_flip_under_50ms": ours["page_flip_ms"] < 50,
    }


if __name__ == "__main__":
    main()
