"""The demo content: JSON files read by `feedback.demo_data`, shipped inside the package."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from feedback.demo_data import MODEL_RELEASES, demo_answers, demo_corpus, demo_questions

ROOT = Path(__file__).resolve().parents[2]


def test_every_question_cites_known_documents_and_answers_for_every_model() -> None:
    corpus_ids = [doc["id"] for doc in demo_corpus()]
    questions = demo_questions()

    assert len(corpus_ids) == len(set(corpus_ids))
    for item in questions:
        assert set(item) == {"question", "topic", "subqueries", "doc_ids", "answers"}
        assert set(item["doc_ids"]) <= set(corpus_ids), item["question"]
        assert set(item["answers"]) == set(MODEL_RELEASES), item["question"]
    assert len(demo_answers()) == len(questions) * len(MODEL_RELEASES) == 36


def test_callers_get_their_own_copy() -> None:
    demo_corpus()[0]["text"] = "changed"
    demo_questions()[0]["answers"].clear()

    assert demo_corpus()[0]["text"] != "changed"
    assert set(demo_questions()[0]["answers"]) == set(MODEL_RELEASES)


@pytest.mark.slow
def test_a_built_package_carries_the_demo_content(tmp_path: Path) -> None:
    # Given a copy of the sources (the build writes its metadata next to pyproject.toml)
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(ROOT / "pyproject.toml", source)
    for package in ("config", "feedback", "rewardmodels"):
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    built = tmp_path / "lib"

    # When setuptools collects the files a wheel (and so a non-editable install) holds
    build = ["-q", "build_py", "--build-lib", str(built)]
    subprocess.run(
        [sys.executable, "-c", "import setuptools; setuptools.setup()", *build],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=120,
    )
    script = (
        "import json, feedback.demo_data as d; "
        "print(json.dumps([d.__file__, len(d.demo_answers())]))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={"PYTHONPATH": str(built), "PATH": ""},
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )

    # Then the installed copy finds its data files
    module_file, answers = json.loads(loaded.stdout)
    assert Path(module_file).is_relative_to(built)
    assert answers == 36
