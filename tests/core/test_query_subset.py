"""The code stays inside the query subset every supported server honours (see core/db.py)."""

import re
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "ringspot"
FORBIDDEN = {
    r'"\$push"': "append sub-documents with core.db.append/update_array",
    r'"\$addToSet"': "use core.db.update_array",
    r'"arrayFilters"|array_filters=': "nx-27017 ignores arrayFilters",
    # Arrays of sub-documents in the data model; ``{"sample.id": {"$in": ...}}`` on an embedded document is fine.
    r'(groups|users|files|isolates|subtractions|reads|updates|status)\.[a-z_]+": \{"\$in"': (
        "use core.db.any_of for membership in arrays of sub-documents"
    ),
}


@pytest.mark.parametrize("pattern", sorted(FORBIDDEN))
def test_no_forbidden_query_shape(pattern):
    offenders = [
        f"{path.relative_to(SOURCE.parent)}:{number}"
        for path in SOURCE.rglob("*.py")
        if path.name != "db.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(pattern, line)
    ]
    assert not offenders, f"{FORBIDDEN[pattern]}: {offenders}"
