"""How quickly does a worker start a process, and how many empty processes does it run a second?

Starts a private nx-27017, a private Redis and one worker as the Procfile runs a pool,
``dramatiq bench.queue_actors --processes 1 --threads 2 --queues bench``, whose actors are
empty (``bench/queue_actors.py``): ``noop(process_id)`` with the process bookkeeping of
every real operation (claim, status history, finish), ``noop_bare(number)`` without it.
Then, in one run:

(a) enqueue -> start latency: ``noop`` messages sent one at a time, each after the
    previous one completed: time from ``send`` to the ``running`` entry the middleware
    writes in the process document's status history (ms precision), median and p90
    against the target (median < 50 ms); also send -> ``complete``, and send -> acked in
    Redis for ``noop`` and for ``noop_bare`` (the broker-only baseline). Then a few
    messages sent after the pool was idle for longer (dramatiq's consumer polls Redis
    with a backoff that grows to ``dramatiq_worker_timeout``, 1 s by default).
(b) throughput: 2,000 process documents created first, their ``noop`` messages sent in
    a burst, time until Redis holds no message of the queue (acknowledged after the
    middleware finished the process); messages/s against the target (>= 300/s on one
    2-thread worker), and the same burst of ``noop_bare`` as the broker-only baseline.

Both are measured twice: on the pool as the Procfile runs it (dramatiq's defaults), then
on the same pool with ``dramatiq_worker_timeout=100 dramatiq_queue_prefetch=32`` in its
environment: an idle consumer then polls Redis at least every 100 ms instead of every
second, and fetches ahead up to 32 unacknowledged messages instead of 2 x threads = 4 (once
that many are out, it sleeps with the same growing backoff, however full the queue is).

Last, the middleware's two store calls (claim, finish) are timed one at a time in this
process, with their database round trips counted, to show what a message costs.

Everything runs on this machine, and so does anything else running: the load average
before the run is printed, with the CPU each process used during the bursts.
Run: ``.venv/bin/python bench/bench_queue.py [MESSAGES]``. No asserts.
"""

from __future__ import annotations

import datetime
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.services import ROOT, VENV_BIN, Services, percentile, run  # noqa: E402

QUEUE = "bench"
TARGET_LATENCY_MS = 50.0
TARGET_RATE = 300.0
LATENCY_MESSAGES = 50
IDLE_MESSAGES, IDLE_SECONDS = 8, 2.0
BURST_TIMEOUT = 25.0  # keeps the run near 2 minutes on a busy machine; the rate is then of those done


class Queue:
    """Watches the ``bench`` queue in Redis: a message leaves ``<queue>.msgs`` when acknowledged."""

    def __init__(self, redis_url: str, services: Services, worker: str):
        import redis

        self.redis = redis.Redis.from_url(redis_url)
        self.key = f"dramatiq:{QUEUE}.msgs"
        self.services, self.name = services, worker
        self.worker = dict(services.procs)[worker]

    def purge(self) -> None:
        """Drop the messages still queued, so the next measurement starts from an empty queue."""
        self.redis.delete(f"dramatiq:{QUEUE}", self.key)
        self.wait_empty(10)

    def pending(self) -> int:
        return self.redis.hlen(self.key)

    def wait_empty(self, timeout: float, interval: float = 0.001) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.pending():
                return True
            if self.worker.poll() is not None:
                raise RuntimeError(f"the worker exited with {self.worker.returncode}:\n{self.services.tail(self.name)}")
            time.sleep(interval)
        return False


def epoch(timestamp: datetime.datetime | str) -> float:
    """Seconds since the epoch of a stored UTC time (an ISO string with ``Z``, or a naive datetime)."""
    if isinstance(timestamp, str):
        timestamp = datetime.datetime.fromisoformat(timestamp.removesuffix("Z"))
    return timestamp.replace(tzinfo=datetime.UTC).timestamp()


def status_times(db, ids: list[str]) -> dict[str, dict[str, float]]:
    """Process id -> {state: epoch seconds} from the status histories."""
    return {
        doc["_id"]: {entry["state"]: epoch(entry["timestamp"]) for entry in doc["status"]}
        for doc in db.processes.find({"_id": {"$in": ids}}, {"status": 1})
    }


def summary(label: str, values_ms: list[float]) -> str:
    if not values_ms:
        return f"  {label:<34} no data"
    return (
        f"  {label:<34} median {percentile(values_ms, 0.5):7.1f} ms   p90 {percentile(values_ms, 0.9):7.1f} ms"
        f"   max {max(values_ms):7.1f} ms   (n={len(values_ms)})"
    )


def latency(queue: Queue, db, noop, noop_bare, create, count: int, pause: float = 0.0) -> dict:
    """Send ``count`` messages one at a time, each once the previous one is acknowledged."""
    sent, acked, ids = {}, {}, []
    for _ in range(count):
        time.sleep(pause)
        process_id = create()
        ids.append(process_id)
        sent[process_id] = time.time()
        noop.send(process_id=process_id)
        queue.wait_empty(30)
        acked[process_id] = time.time()
    times = status_times(db, ids)
    result = {
        "running": [(times[i]["running"] - sent[i]) * 1000 for i in ids if "running" in times.get(i, {})],
        "complete": [(times[i]["complete"] - sent[i]) * 1000 for i in ids if "complete" in times.get(i, {})],
        "acked": [(acked[i] - sent[i]) * 1000 for i in ids],
        "bare_acked": [],
    }
    if noop_bare is not None:
        for number in range(count):
            time.sleep(pause)
            start = time.time()
            noop_bare.send(number)
            queue.wait_empty(30)
            result["bare_acked"].append((time.time() - start) * 1000)
    return result


def burst(queue: Queue, send, count: int, services: Services) -> dict:
    """Send ``count`` messages at once; seconds until all are acknowledged, CPU used meanwhile."""
    before = services.cpu_seconds()
    start = time.perf_counter()
    for number in range(count):
        send(number)
    sent = time.perf_counter() - start
    finished = queue.wait_empty(BURST_TIMEOUT, interval=0.01)
    elapsed = time.perf_counter() - start
    done = count - queue.pending()
    after = services.cpu_seconds()
    if not finished:
        queue.purge()
    return {
        "sent": sent,
        "elapsed": elapsed,
        "done": done,
        "finished": finished,
        "rate": done / elapsed,
        "cpu": {name: (after[name] - before.get(name, 0.0)) / elapsed for name in after},
    }


def show_burst(label: str, result: dict, count: int) -> None:
    partial = (
        "" if result["finished"] else f"  !! only {result['done']:,} of {count:,} done after {BURST_TIMEOUT:.0f} s"
    )
    print(
        f"  {label:<34} {result['rate']:>7,.0f} messages/s   {result['done']:,} in {result['elapsed']:.2f} s "
        f"(sending took {result['sent']:.2f} s){partial}"
    )
    cores = ", ".join(f"{name} {used:.2f}" for name, used in result["cpu"].items())
    print(f"  {'':<34} CPU cores busy: {cores} (total {sum(result['cpu'].values()):.2f} of {os.cpu_count()})")


#: dramatiq's own knobs (environment variables read by the worker): how long an idle consumer
#: may sleep between polls of Redis, and how many messages it holds unacknowledged.
TUNED_ENV = {"dramatiq_worker_timeout": "100", "dramatiq_queue_prefetch": "32"}


def run_pool(services: Services, name: str, env: dict, redis_url: str, db, create, count: int) -> dict:
    """Start one worker, measure (a) and (b) on it, stop it; returns the headline figures."""
    from bench.queue_actors import noop, noop_bare

    services.start(
        name,
        [str(VENV_BIN / "dramatiq"), "bench.queue_actors", "--processes", "1", "--threads", "2", "--queues", QUEUE],
        env=env,
        cwd=ROOT,
    )
    queue = Queue(redis_url, services, name)
    # Warm-up: the worker is ready once it has run both kinds of message.
    noop.send(process_id=create())
    noop_bare.send(0)
    if not queue.wait_empty(60, interval=0.05):
        raise RuntimeError(f"the worker ran nothing in 60 s:\n{services.tail(name)}")
    latency(queue, db, noop, noop_bare, create, 5)

    print(
        f"(a) enqueue -> start, {LATENCY_MESSAGES} messages one at a time, each sent once the previous "
        "one is acknowledged"
    )
    warm = latency(queue, db, noop, noop_bare, create, LATENCY_MESSAGES)
    print(summary("send -> running (noop)", warm["running"]))
    print(summary("send -> complete (noop)", warm["complete"]))
    print(summary("send -> acked (noop)", warm["acked"]))
    print(summary("send -> acked (noop_bare, baseline)", warm["bare_acked"]))
    print(
        f"  acked: {percentile(warm['acked'], 0.5) / percentile(warm['bare_acked'], 0.5):.2f}x the broker-only median"
    )
    print(f"    the same after the pool was idle {IDLE_SECONDS:.0f} s, {IDLE_MESSAGES} messages")
    idle = latency(queue, db, noop, None, create, IDLE_MESSAGES, pause=IDLE_SECONDS)
    print(summary("send -> running (noop)", idle["running"]))

    print(f"(b) throughput, bursts of {count:,} messages")
    start = time.perf_counter()
    ids = [create() for _ in range(count)]
    created = time.perf_counter() - start
    print(f"  {'process documents created first':<34} {count / created:>7,.0f} documents/s ({created:.2f} s)")
    booked = burst(queue, lambda n: noop.send(process_id=ids[n]), count, services)
    show_burst("noop with process bookkeeping", booked, count)
    bare = burst(queue, noop_bare.send, count, services)
    show_burst("noop_bare (broker-only baseline)", bare, count)
    states = [doc["state"] for doc in db.processes.find({"_id": {"$in": ids}}, {"state": 1})]
    print(f"  process documents complete: {states.count('complete'):,} of {count:,}")
    services.close_one(name)
    return {
        "warm": percentile(warm["running"], 0.5),
        "idle": percentile(idle["running"], 0.5),
        "rate": booked["rate"],
        "bare_rate": bare["rate"],
    }


def command_counter():
    """A pymongo command listener that counts round trips to the database."""
    from pymongo import monitoring

    class CommandCounter(monitoring.CommandListener):
        count = 0

        def started(self, event):
            self.count += 1

        def succeeded(self, event):
            pass

        def failed(self, event):
            pass

    return CommandCounter()


def bookkeeping_cost(rounds: int = 200) -> None:
    """Where a message's bookkeeping time goes: the middleware's store calls, one at a time, here."""
    from pymongo import monitoring

    from ringspot.core import processes
    from ringspot.core.db import close_all, connect
    from ringspot.core.settings import from_env
    from ringspot.workers.runs import DbStore

    counter = command_counter()
    monitoring.register(counter)  # applies to clients created from now on
    close_all()
    db = connect(from_env().mongodb_uri)
    ids = [processes.create_process(db, "bench_noop", user_id=None)[0]["_id"] for _ in range(rounds)]
    stores = [DbStore(from_env(), process_id) for process_id in ids]
    timings = {}
    for label, call in (
        ("claim", lambda store: store.claim()),
        ("finish", lambda store: store.finish("complete", None)),
        ("ping", lambda store: db.command("ping")),
    ):
        commands = counter.count
        start = time.perf_counter()
        for store in stores:
            call(store)
        timings[label] = ((time.perf_counter() - start) / rounds * 1000, (counter.count - commands) / rounds)
    print(f"\nbookkeeping of one message, sequential, in this process ({rounds} rounds):")
    for label, (ms, trips) in timings.items():
        print(f"  {label:<34} {ms:6.2f} ms   {trips:4.1f} database round trips")
    per_message = timings["claim"][0] + timings["finish"][0]
    trips = timings["claim"][1] + timings["finish"][1]
    print(
        f"  => {trips:.0f} round trips, {per_message:.1f} ms of database time per message: one thread runs at most "
        f"{1000 / per_message:,.0f} messages/s, two at most {2000 / per_message:,.0f}/s if nx-27017 served them "
        "in parallel"
    )


def main(count: int = 2000) -> None:
    with Services("queue") as services:
        base = services.database()
        redis_url = services.redis()
        settings_env = {
            "MONGODB_URI": f"{base}/ringspot_bench",
            "REDIS_URL": redis_url,
            "BROKER_URL": redis_url,
            "DATA_PATH": str(services.path / "data"),
        }
        os.environ.update(settings_env)  # before the actors bind to a broker
        env = {k: v for k, v in os.environ.items() if k not in TUNED_ENV}

        from ringspot.core import processes
        from ringspot.core.db import connect, ensure_indexes

        db = connect(settings_env["MONGODB_URI"])
        ensure_indexes(db)

        def create() -> str:
            return processes.create_process(db, "bench_noop", user_id=None)[0]["_id"]

        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"one worker, 1 process x 2 threads, on {os.cpu_count()} CPUs (load average before the run: {load})")
        print("\n== as the Procfile runs a pool (dramatiq defaults: idle poll backoff up to 1 s, prefetch 2 x threads)")
        default = run_pool(services, "worker", env, redis_url, db, create, count)
        tuned_label = " ".join(f"{k}={v}" for k, v in TUNED_ENV.items())
        print(f"\n== the same pool with {tuned_label}")
        tuned = run_pool(services, "worker-tuned", {**env, **TUNED_ENV}, redis_url, db, create, count)

        print("\nagainst the targets (default pool / tuned pool):")
        for label, key, target in (
            ("start latency median, warm pool", "warm", TARGET_LATENCY_MS),
            ("start latency median, idle 2 s", "idle", TARGET_LATENCY_MS),
        ):
            print(
                f"  {label:<36} {default[key]:7.1f} ms / {tuned[key]:7.1f} ms   vs target < {target:.0f} ms "
                f"({default[key] / target:.2f}x / {tuned[key] / target:.2f}x the target)"
            )
        print(
            f"  {'throughput with bookkeeping':<36} {default['rate']:7,.0f} /s  / {tuned['rate']:7,.0f} /s    "
            f"vs target >= {TARGET_RATE:.0f}/s ({default['rate'] / TARGET_RATE:.2f}x / "
            f"{tuned['rate'] / TARGET_RATE:.2f}x the target)"
        )
        print(
            f"  {'broker-only baseline':<36} {default['bare_rate']:7,.0f} /s  / {tuned['bare_rate']:7,.0f} /s    "
            f"(bookkeeping runs at {default['rate'] / default['bare_rate']:.2f}x / "
            f"{tuned['rate'] / tuned['bare_rate']:.2f}x of it)"
        )
        bookkeeping_cost()


if __name__ == "__main__":
    run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
