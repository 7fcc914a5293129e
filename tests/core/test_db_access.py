"""Only ``ringspot/core`` talks to the database: nothing else imports pymongo or reaches a collection.

Views and actors hand the database object to ``core`` functions (``get_<thing>_or_404``, ``find_*``,
``rights.require_*``); reading ``db.samples``, ``db()["samples"]`` or ``self.db.refs`` anywhere else
is a query outside the layer that owns the data model and the query subset (see core/db.py).
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ringspot"
CORE = PACKAGE / "core"
#: Names under which code outside core holds the database object.
DATABASE_NAMES = {"db", "database"}
#: Attributes of the database object itself (not collections): reading them runs no query.
DATABASE_ATTRIBUTES = {"name", "client", "codec_options", "read_preference", "read_concern", "write_concern"}


def modules_outside_core() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if CORE not in path.parents)


def is_database(node: ast.expr) -> bool:
    """``db``, ``database``, ``self.db`` or ``db()``: the expressions that stand for the database."""
    if isinstance(node, ast.Call):
        return is_database(node.func)
    if isinstance(node, ast.Name):
        return node.id in DATABASE_NAMES
    if isinstance(node, ast.Attribute):
        return node.attr in DATABASE_NAMES
    return False


def imports_pymongo(node: ast.AST) -> bool:
    if isinstance(node, ast.Import):
        return any(alias.name.split(".")[0] in ("pymongo", "bson") for alias in node.names)
    if isinstance(node, ast.ImportFrom):
        return node.level == 0 and (node.module or "").split(".")[0] in ("pymongo", "bson")
    return False


def reaches_collection(node: ast.AST) -> bool:
    """``<database>.<collection>`` or ``<database>[<collection>]``; calls *with* the database are fine."""
    # ``self.db`` itself is only the holder: what hangs off the database is a collection.
    if isinstance(node, ast.Attribute) and node.attr in DATABASE_ATTRIBUTES:
        return False
    return isinstance(node, ast.Attribute | ast.Subscript) and is_database(node.value)


def offenders(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    where = path.relative_to(PACKAGE.parent)
    found = []
    for node in ast.walk(tree):
        if imports_pymongo(node):
            found.append(f"{where}:{node.lineno} imports pymongo")
        elif reaches_collection(node):
            found.append(f"{where}:{node.lineno} {ast.unparse(node)}")
    return found


def test_the_check_sees_every_form_of_collection_access():
    """The rule itself: each way of reaching a collection is caught, handing the database on is not."""
    caught = [
        "import pymongo",
        "from pymongo.database import Database",
        "import pymongo.errors as errors",
        "db().users.find({})",
        "db.samples.update_one({}, {})",
        "self.db.refs.delete_one({})",
        "database['otus'].find_one()",
    ]
    allowed = [
        "get_sample_or_404(db(), sample_id)",
        "start(self.db, ref_id)",
        "sample.find('x')",
        "db_path.name",
        "prefix = database.name",
    ]
    for source in caught + allowed:
        flagged = [node for node in ast.walk(ast.parse(source)) if imports_pymongo(node) or reaches_collection(node)]
        assert bool(flagged) == (source in caught), source


def folder_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0]


@pytest.mark.parametrize("folder", sorted({folder_of(path) for path in modules_outside_core()}))
def test_no_database_access_outside_core(folder):
    found = [line for path in modules_outside_core() if folder_of(path) == folder for line in offenders(path)]
    assert not found, "move these queries behind ringspot/core functions:\n" + "\n".join(found)
