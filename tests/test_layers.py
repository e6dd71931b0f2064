"""The layers stay apart, checked on the source itself so new code can't quietly blur them:

- pages, API views and authentication read through selectors and write through services: no
  ORM query in them;
- a module never imports another module's private name (a helper two modules need is a shared
  helper, in feedback/core);
- the reward-model app uses the shared infrastructure in feedback/core, never feedback's views
  or API modules;
- services refuse bad input with the one ValidationFailed (no error class of their own), which
  the API's exception handler and the pages' ServiceForm each translate in one place: no API
  view or page catches a service's validation error to translate it by hand.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("feedback", "rewardmodels")

# Where requests are parsed and answered: the modules that must hold no ORM query.
REQUEST_LAYER = sorted(
    {
        *ROOT.glob("feedback/views/*.py"),
        *ROOT.glob("rewardmodels/views/*.py"),
        ROOT / "feedback" / "apis.py",
        ROOT / "rewardmodels" / "apis.py",
        ROOT / "feedback" / "core" / "access.py",
        ROOT / "feedback" / "core" / "auth.py",
        ROOT / "feedback" / "core" / "pages.py",
    }
)

# Methods only a queryset or a related manager has (or whose no-argument form only they have):
# calling one builds or runs a query.
QUERY_METHODS = {
    "aggregate",
    "annotate",
    "bulk_create",
    "bulk_update",
    "defer",
    "distinct",
    "exclude",
    "exists",
    "extra",
    "filter",
    "first",
    "get_or_create",
    "in_bulk",
    "iterator",
    "last",
    "only",
    "order_by",
    "prefetch_related",
    "raw",
    "select_for_update",
    "select_related",
    "update_or_create",
    "using",
    "values_list",
}
QUERY_METHODS_WITHOUT_ARGUMENTS = {"count"}  # str.count and list.count take one
QUERY_SHORTCUTS = {"get_object_or_404", "get_list_or_404"}
# Raw SQL and transactions belong in selectors and services.
DATABASE_HANDLES = {"connection", "connections", "transaction"}

# Feedback's modules that answer requests: the reward-model app must not depend on them.
FEEDBACK_REQUEST_MODULES = (
    "feedback.views",
    "feedback.apis",
    "feedback.api_urls",
    "feedback.urls",
    "feedback.schemas",
)


# The request layer's modules that answer requests (auth and access only check them).
VIEWS_AND_APIS = sorted(
    {
        *ROOT.glob("feedback/views/*.py"),
        *ROOT.glob("rewardmodels/views/*.py"),
        ROOT / "feedback" / "apis.py",
        ROOT / "rewardmodels" / "apis.py",
    }
)
# Service errors that mean "bad input": answered once for the API and once for pages. (Other
# ServiceErrors name a state a view handles its own way, such as RerunUnavailable.)
VALIDATION_ERRORS = {"ValidationFailed", "ServiceError"}


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def _project_sources() -> Iterator[Path]:
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def _offences_in(
    paths: Sequence[Path], check: Callable[[Path], list[str]], *, at_least: int
) -> list[str]:
    """What `check` finds in each of `paths`, once the paths are counted: a list of modules that
    went missing (a moved folder, a glob gone wrong) must not pass for a clean tree."""
    assert len(paths) >= at_least, "the list of modules went missing"
    return [offence for path in paths for offence in check(path)]


def _module(folder: Path, source: str) -> Path:
    """A module holding `source`, for the tests of the checks themselves."""
    path = folder / "module.py"
    path.write_text(source)
    return path


def _found(check: Callable[[Path], list[str]], path: Path) -> list[str]:
    """What `check` finds in `path`, without the place ("file:line: ")."""
    return [offence.split(": ", 1)[1] for offence in check(path)]


def _query_offences(path: Path) -> list[str]:
    """One line per source line that queries, naming its outermost query expression."""
    found: dict[int, str] = {}
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        offence = _query_offence(node)
        if offence is not None and isinstance(node, ast.expr | ast.stmt):
            found.setdefault(node.lineno, offence)  # the walk meets outer expressions first
    return [f"{_relative(path)}:{line}: {offence}" for line, offence in sorted(found.items())]


def _query_offence(node: ast.AST) -> str | None:
    if isinstance(node, ast.Attribute) and node.attr == "objects":
        return f"{ast.unparse(node)} (a model manager)"
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in QUERY_SHORTCUTS:
            return f"{name}(...)"
        if isinstance(func, ast.Attribute) and (
            name in QUERY_METHODS or (name in QUERY_METHODS_WITHOUT_ARGUMENTS and not node.args)
        ):
            return f"{ast.unparse(func)}(...)"
    if isinstance(node, ast.ImportFrom) and node.module == "django.db":
        handles = [alias.name for alias in node.names if alias.name in DATABASE_HANDLES]
        if handles:
            return f"imports {', '.join(handles)} from django.db"
    return None


def _imports(path: Path, *, root: Path = ROOT) -> Iterator[tuple[int, str, str]]:
    """(line, module, name) of every import in the file under `root`, at any depth (a
    function-level import counts too), a relative one resolved to the absolute module it names
    (`from . import x` in a/b.py is a, x); `name` is "" for `import module`."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, ""
        elif isinstance(node, ast.ImportFrom):
            module = _absolute_module(node, path, root=root)
            for alias in node.names:
                yield node.lineno, module, alias.name


def _absolute_module(node: ast.ImportFrom, path: Path, *, root: Path) -> str:
    """The module an import from names, as an absolute name. A relative one counts from the
    file's package: one dot is that package, each further dot one package up."""
    if not node.level:
        return node.module or ""
    package = list(path.relative_to(root).parent.parts)
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def test_the_request_layer_holds_no_orm_query() -> None:
    # given the modules that parse requests and render answers
    # when their code is read
    offences = _offences_in(REQUEST_LAYER, _query_offences, at_least=9)
    # then none of it queries the database: that is what selectors (reads) and services
    # (writes) are for
    assert offences == [], "ORM code outside selectors and services:\n" + "\n".join(offences)


def test_the_orm_check_sees_each_kind_of_query(tmp_path: Path) -> None:
    # given a view written the way the rule forbids, once per kind of query
    source = _module(
        tmp_path,
        "from django.db import connection\n"
        "from django.shortcuts import get_object_or_404\n"
        "def view(request, project, answer):\n"
        "    a = Answer.objects.get(pk=1)\n"
        "    b = get_object_or_404(Answer, pk=1)\n"
        "    c = answer.stages.filter(position=0).first()\n"
        "    d = project.answers.select_related('revision_of')\n"
        "    e = answer.critiques.count()\n"
        "    f = 'text'.count('t') + len(request.POST.get('x', ''))\n",
    )
    # when it is checked
    found = _found(_query_offences, source)
    # then every query is named, and the string method of the same name is not
    assert found == [
        "imports connection from django.db",
        "Answer.objects (a model manager)",
        "get_object_or_404(...)",
        "answer.stages.filter(position=0).first(...)",
        "project.answers.select_related(...)",
        "answer.critiques.count(...)",
    ]


def test_no_module_imports_another_modules_private_name() -> None:
    # given every module of the two apps
    offences = [
        f"{_relative(path)}:{line}: from {module} import {name}"
        for path in _project_sources()
        for line, module, name in _imports(path)
        # when one imports a private name of another of the project's modules
        if module.split(".")[0] in APPS and name.startswith("_") and not name.startswith("__")
    ]
    # then it should have been a shared helper instead
    assert offences == [], "private names imported across modules:\n" + "\n".join(offences)


def test_relative_imports_are_checked_as_the_modules_they_name(tmp_path: Path) -> None:
    # given a package whose modules import each other by relative imports
    (tmp_path / "app" / "views").mkdir(parents=True)
    (tmp_path / "app" / "views" / "__init__.py").write_text("from .site import page\n")
    site = tmp_path / "app" / "views" / "site.py"
    site.write_text(
        "from . import forms\n"
        "from .models import _private\n"
        "from ..core import helpers\n"
        "def view():\n"
        "    from .. import urls\n"
        "import app.urls\n"
    )
    # when their imports are read
    found = [
        [(module, name) for _, module, name in _imports(path, root=tmp_path)]
        for path in (tmp_path / "app" / "views" / "__init__.py", site)
    ]
    # then each names the absolute module, as an absolute import would, so every rule on
    # imports applies to it
    assert found == [
        [("app.views.site", "page")],
        [
            ("app.views", "forms"),
            ("app.views.models", "_private"),
            ("app.core", "helpers"),
            ("app.urls", ""),
            ("app", "urls"),
        ],
    ]


@pytest.mark.parametrize("module", FEEDBACK_REQUEST_MODULES)
def test_rewardmodels_never_imports_feedbacks_views_or_api_modules(module: str) -> None:
    # given every module of the reward-model app, and one of feedback's request modules
    offences = [
        f"{_relative(path)}:{line}: {imported}"
        for path in sorted((ROOT / "rewardmodels").rglob("*.py"))
        for line, imported_module, name in _imports(path)
        # when one of them imports it (or a module under it) by any spelling
        for imported in [f"{imported_module}.{name}" if name else imported_module]
        if any(
            candidate == module or candidate.startswith(f"{module}.")
            for candidate in (imported_module, imported)
        )
    ]
    # then that is a dependency on feedback's request layer: what both apps need lives in
    # feedback/core
    assert offences == [], f"rewardmodels imports {module}:\n" + "\n".join(offences)


def _error_class_offences(path: Path) -> list[str]:
    """Classes that would start a family of validation errors again: one named `...Invalid`, or
    a subclass of ValidationFailed."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ClassDef):
            bases = {ast.unparse(base).rpartition(".")[2] for base in node.bases}
            if node.name.endswith("Invalid") or "ValidationFailed" in bases:
                found.append(f"{_relative(path)}:{node.lineno}: class {node.name}")
    return found


def _translation_offences(path: Path) -> list[str]:
    """`except` clauses that catch a service's validation error (ValidationFailed, its base, or
    an `...Invalid` class) to translate it by hand."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            caught = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
            names = [ast.unparse(c).rpartition(".")[2] for c in caught]
            bad = [n for n in names if n in VALIDATION_ERRORS or n.endswith("Invalid")]
            if bad:
                found.append(f"{_relative(path)}:{node.lineno}: except {', '.join(bad)}")
    return found


def test_services_have_one_validation_error() -> None:
    # given every module of the project
    sources = [*_project_sources(), *sorted((ROOT / "config").rglob("*.py"))]
    # when one defines an error class for bad input
    offences = _offences_in(sources, _error_class_offences, at_least=50)
    # then that is a second validation error: services raise ValidationFailed with the
    # messages by field
    assert offences == [], "validation error classes besides ValidationFailed:\n" + "\n".join(
        offences
    )


def test_no_api_or_page_translates_a_validation_error_by_hand() -> None:
    # given the API views and the pages
    # when their code is read
    offences = _offences_in(VIEWS_AND_APIS, _translation_offences, at_least=7)
    # then none catches a service's validation error: the API's exception handler answers it
    # with the 400, and a page's ServiceForm puts it on the form
    assert offences == [], "validation errors translated by hand:\n" + "\n".join(offences)


def test_the_error_checks_see_each_way_of_writing_it(tmp_path: Path) -> None:
    # given a service and a view written the way the rules forbid, and what they allow
    source = _module(
        tmp_path,
        "class ExportInvalid(ServiceError): ...\n"
        "class QueueRefused(errors.ValidationFailed): ...\n"
        "class RerunUnavailable(ServiceError): ...\n"
        "def view(request):\n"
        "    try:\n"
        "        services.export_request()\n"
        "    except services.datasets.ExportInvalid as error:\n"
        "        raise InvalidInput(error.message, error.errors) from error\n"
        "    except (KeyError, ValidationFailed):\n"
        "        pass\n"
        "    except ServiceError:\n"
        "        pass\n"
        "    except RerunUnavailable:\n"
        "        pass\n",
    )
    # when both checks read it
    classes = _found(_error_class_offences, source)
    handlers = _found(_translation_offences, source)
    # then each forbidden form is named, and a refusal that is not about input is not
    assert classes == ["class ExportInvalid", "class QueueRefused"]
    assert handlers == [
        "except ExportInvalid",
        "except ValidationFailed",
        "except ServiceError",
    ]
