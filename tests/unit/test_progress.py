"""Long work in the core tells its progress to the reporter a view installed, else to tqdm."""

from __future__ import annotations

import threading

from workbench.progress import progress, reporting_to


def test_a_reporter_hears_every_count_with_the_total_and_the_work_name():
    heard = []
    report = lambda done, total, what: heard.append((done, total, what))  # noqa: E731
    with reporting_to(report), progress(10, "Tokenizing rows") as advance:
        advance(4)
        advance(6)
    assert heard == [
        (0, 10, "Tokenizing rows"),
        (4, 10, "Tokenizing rows"),
        (10, 10, "Tokenizing rows"),
    ]


def test_without_a_reporter_a_tqdm_bar_counts(capsys):
    with progress(3, "Counting", unit="rows") as advance:
        advance(3)
    err = capsys.readouterr().err
    assert "Counting" in err and "3/3" in err


def test_disabled_work_reports_nothing():
    heard = []
    with reporting_to(lambda *a: heard.append(a)), progress(5, "small", disable=True) as advance:
        advance(5)
    assert heard == []


def test_a_reporter_reaches_only_the_work_of_its_own_thread():
    heard, other = [], []

    def elsewhere():
        with reporting_to(lambda *a: other.append(a)), progress(1, "other") as advance:
            advance(1)

    with reporting_to(lambda *a: heard.append(a)):
        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()
        with progress(2, "mine") as advance:
            advance(2)
    assert [a[2] for a in heard] == ["mine", "mine"] and [a[2] for a in other] == ["other"] * 2
