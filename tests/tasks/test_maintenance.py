"""The reaper fails processes whose worker died and whose message never came back."""

from ringspot.core import processes
from ringspot.core.utils import ago, now
from ringspot.tasks.maintenance import reap_processes


def test_reaper_fails_abandoned_processes_only(db, settings):
    abandoned, _ = processes.create_process(db, "delete_reference", user_id="a")
    alive, _ = processes.create_process(db, "delete_reference", user_id="a")
    long_ago = ago(settings.heartbeat_timeout * 11)
    db.processes.update_one({"_id": abandoned["_id"]}, {"$set": {"state": "running", "heartbeat_at": long_ago}})
    db.processes.update_one({"_id": alive["_id"]}, {"$set": {"state": "running", "heartbeat_at": now()}})
    assert reap_processes.fn() == 1
    doc = db.processes.find_one({"_id": abandoned["_id"]})
    assert doc["state"] == "error" and "stopped responding" in doc["error"]
    assert db.processes.find_one({"_id": alive["_id"]})["state"] == "running"
