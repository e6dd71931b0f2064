"""The test tree mirrors the source tree, so a module's tests are found where the module is.

A test module `tests/<folder>/test_<name>.py` tests the module `<folder>/<name>.py` or the package
`<folder>/<name>/` of the source: feedback/services/datasets.py is tested in
tests/feedback/services/test_datasets.py, config/urls.py in tests/config/test_urls.py. When a
module has more tests than one file holds well, each further file is named for its aspect,
`test_<name>_<aspect>.py`: tests/feedback/services/test_annotation_queues.py holds the tests of
the queues in feedback/services/annotation.py.

Not bound to one module: tests/browser/, whose tests follow a person through whole journeys, and
the tests in tests/ itself that read the whole source tree at once (WHOLE_TREE). Helpers that test
modules share (conftest.py, factories.py, the fake servers) are not test modules and may live in
any folder of tests/.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
# Tests of journeys through the site in a real browser: each crosses many modules.
JOURNEYS = "browser"
# Tests of rules that hold for the whole source tree, directly in tests/.
WHOLE_TREE = {"test_import_cycles.py", "test_layers.py", "test_layout.py"}


def mirrored_source(test_module: Path, *, tests: Path, source: Path) -> Path | None:
    """The module or package of `source` that `test_module` (a file under `tests`) is named
    for, or None. The longest matching name wins: tests/feedback/test_demo_data.py is
    feedback/demo_data.py, tests/feedback/test_apis_answers.py is feedback/apis.py."""
    folder = source / test_module.parent.relative_to(tests)
    words = test_module.stem.removeprefix("test_").split("_")
    for end in range(len(words), 0, -1):
        name = "_".join(words[:end])
        for candidate in (folder / f"{name}.py", folder / name / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def layout_offences(*, tests: Path, source: Path) -> list[str]:
    """The test modules under `tests` that mirror no module or package of `source`."""
    offences = []
    for test_module in sorted(tests.rglob("test_*.py")):
        place = test_module.relative_to(tests)
        if place.parts[0] == JOURNEYS or (len(place.parts) == 1 and place.name in WHOLE_TREE):
            continue
        if mirrored_source(test_module, tests=tests, source=source) is None:
            offences.append(str(place))
    return offences


def test_every_test_module_is_named_for_a_module_of_the_source() -> None:
    # given the test tree and the source tree beside it
    # when each test module is matched to the source module or package it is named for
    offences = layout_offences(tests=TESTS, source=ROOT)

    # then each has one: a test module for a module that was moved or renamed moves with it
    assert offences == [], (
        "test modules that mirror no module or package of the source (name them "
        "tests/<folder>/test_<module>.py or test_<module>_<aspect>.py):\n"
        + "\n".join(f"tests/{offence}" for offence in offences)
    )


def test_the_layout_check_names_each_misplaced_test_module(tmp_path: Path) -> None:
    # given a source tree with a module, a package and a module in a subpackage
    source, tests = tmp_path, tmp_path / "tests"
    for path in ("app/__init__.py", "app/models.py", "app/views/__init__.py", "app/views/site.py"):
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        (source / path).touch()
    # and test modules named for them, for nothing, or exempt
    for path in (
        "app/test_models.py",  # app/models.py
        "app/test_views.py",  # the package app/views/
        "app/views/test_site.py",  # app/views/site.py
        "app/views/test_site_connector.py",  # an aspect of app/views/site.py
        "app/views/conftest.py",  # not a test module
        "app/test_model.py",  # no app/model.py
        "app/test_site.py",  # site.py is in app/views/
        "app/views/test_sites.py",  # no app/views/sites.py
        "app/reports/test_site.py",  # no app/reports/
        "browser/test_journey.py",  # a journey
        "test_layers.py",  # the whole tree
        "test_layout_extra.py",  # not a whole-tree test: no layout.py
    ):
        (tests / path).parent.mkdir(parents=True, exist_ok=True)
        (tests / path).touch()

    # when the layout is checked
    offences = layout_offences(tests=tests, source=source)

    # then exactly the test modules named for nothing in the source are named
    assert offences == [
        "app/reports/test_site.py",
        "app/test_model.py",
        "app/test_site.py",
        "app/views/test_sites.py",
        "test_layout_extra.py",
    ]


def test_every_folder_of_tests_is_a_package() -> None:
    # given the folders of the test tree that hold Python modules
    folders = {path.parent for path in TESTS.rglob("*.py")}

    # when one has no __init__.py
    missing = sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").is_file())

    # then two test modules of one name in different folders (tests/feedback/services/
    # test_queues.py and tests/feedback/views/test_queues.py) would be imported as one module
    assert missing == [], "test folders without __init__.py:\n" + "\n".join(missing)
