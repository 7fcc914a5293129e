"""The command line as a user runs it, against a live server with an in-thread worker."""

import pytest
from click.testing import CliRunner, Result

from ringspot.cli import main


@pytest.fixture
def cli(admin, live_server, stub_worker, monkeypatch, tmp_path):
    """``cli("refs", "list", input=None)``: run ``ringspot ...`` as the administrator, with no saved config."""
    monkeypatch.setenv("RINGSPOT_URL", live_server)
    monkeypatch.setenv("RINGSPOT_API_KEY", f"admin:{admin.key}")
    monkeypatch.setenv("RINGSPOT_CONFIG", str(tmp_path / "none.json"))

    def invoke(*args, input=None) -> Result:
        return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)

    return invoke


def ok(result: Result) -> Result:
    """The result of a command that must succeed."""
    assert result.exit_code == 0, result.output
    return result
