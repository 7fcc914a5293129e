"""The supervisor restarts a child that exits, with doubling delays, and leaves the others alone."""

import sys
import threading
import time

from ringspot.cli.supervisor import Command, Supervisor


def test_a_child_that_exits_is_restarted_with_backoff_and_the_others_run_on():
    lines: list[str] = []
    supervisor = Supervisor({"PATH": "/usr/bin:/bin"}, log=lines.append)
    steady = supervisor.start(Command("steady", [sys.executable, "-c", "import time; time.sleep(60)"]))
    supervisor.start(Command("flaky", [sys.executable, "-c", "import sys; sys.exit(3)"]))
    watcher = threading.Thread(target=supervisor.watch)
    watcher.start()
    time.sleep(4.5)
    supervisor.stop()
    watcher.join(10)

    exits = [line for line in lines if line.startswith("[red]flaky exited with code 3")]
    assert [line.rsplit("restarting in ", 1)[1] for line in exits[:2]] == ["1 s[/red]", "2 s[/red]"]
    assert sum("flaky started" in line for line in lines) >= 2
    assert supervisor.children["steady"].proc is steady and not any("steady exited" in line for line in lines)
    assert steady.returncode is not None and "[dim]steady stopped[/dim]" in lines  # by the stop, not before
