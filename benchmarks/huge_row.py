"""Benchmark: a 10 MB row in the dataset browser and the template editor, beside a normal row.

A JSONL file of six rows, one with a 10 MB user turn (a pasted log or book, as scraped
instruction data has), is loaded into a Session on the embedded model with a DatasetBrowser and
a TemplateEditor attached, as in the notebook. For a normal row and for the huge row it prints:
  page_text_bytes    text the browser's widgets hold, so send to the page (every string
                     trait: HTML values, textareas, labels, options); plotly's JavaScript excluded
  editor_text_bytes  the same for the template editor
  select_seconds     selecting the row until both views have redrawn (median of --repeats)
Targets: under 100 KB of page text and under 1 s with the huge row.

    python benchmarks/huge_row.py [--megabytes 10] [--repeats 3]
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

PAGE_TARGET_BYTES = 100_000
SELECT_TARGET_S = 1.0
HUGE_ROW, NORMAL_ROW = 3, 1
WORDS = "the a of to and in is it you that he was for on are with as his they at be this".split()  # noqa: SIM905


def write_rows(path: Path, megabytes: float, seed: int = 0) -> None:
    """Six short conversations; row HUGE_ROW's user turn is `megabytes` MB of words."""
    rng = random.Random(seed)
    size = int(megabytes * 1_000_000)
    huge = " ".join(rng.choice(WORDS) for _ in range(size // 3 + 1))[:size]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(6):
            question = huge if i == HUGE_ROW else f"Question {i}: what is {i} + {i}?"
            messages = [
                {"role": "user", "content": question},
                {"role": "assistant", "content": f"{i + i}"},
            ]
            f.write(json.dumps({"messages": messages}) + "\n")


def text_bytes(widget) -> int:
    """UTF-8 bytes of every string a widget tree syncs to the page (private traits excluded:
    they hold front-end code, such as plotly's JavaScript module, not page text)."""
    total = 0
    for w in _tree(widget):
        for key, value in w.get_state().items():
            if key.startswith("_"):
                continue
            values = value if isinstance(value, list | tuple) else [value]
            total += sum(len(v.encode()) for v in values if isinstance(v, str))
    return total


def _tree(widget):
    yield widget
    for child in getattr(widget, "children", ()) or ():
        yield from _tree(child)


def measure(session, browser, editor, row: int, repeats: int) -> dict:
    """Select `row` (from another row) `repeats` times; the sizes once it shows."""
    times = []
    for _ in range(repeats):
        session.select(0)
        start = time.perf_counter()
        session.select(row)
        times.append(time.perf_counter() - start)
    return {
        "row": row,
        "chars": sum(len(m["content"]) for m in session.dataset[row]["messages"]),
        "page_text_bytes": text_bytes(browser),
        "editor_text_bytes": text_bytes(editor),
        "select_seconds": round(statistics.median(times), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import workbench as wb
    from widgets.data.dataset_browser import DatasetBrowser
    from widgets.template.template_editor import TemplateEditor

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.jsonl"
        write_rows(path, args.megabytes)
        file_mb = path.stat().st_size / 1e6
        session = wb.Session.open(Path(tmp) / "workspace")
        start = time.perf_counter()
        session.load_dataset(str(path))
        load_s = time.perf_counter() - start
        browser, editor = DatasetBrowser(session), TemplateEditor(session)  # imports, warm-up
        normal = measure(session, browser, editor, NORMAL_ROW, args.repeats)
        huge = measure(session, browser, editor, HUGE_ROW, args.repeats)
        session.close()
    result = {
        "file_megabytes": round(file_mb, 1),
        "load_seconds": round(load_s, 2),
        "max_length": session.max_length,
        "normal_row": normal,
        "huge_row": huge,
        "targets": {"page_text_bytes": PAGE_TARGET_BYTES, "select_seconds": SELECT_TARGET_S},
        "meets_targets": huge["page_text_bytes"] < PAGE_TARGET_BYTES
        and huge["select_seconds"] < SELECT_TARGET_S,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
