"""Load: 200 analyses queued at once across two worker pools, read latency of the API meanwhile.

Starts a private nx-27017, Redis, the API under gunicorn (the Procfile's ``web`` line: 2 workers
x 4 threads) and TWO ``analyses`` worker pools, each as the Procfile's ``worker-analyses`` line
runs one (``dramatiq_worker_timeout=100 dramatiq ringspot.workers.app --processes 1 --threads 1
--queues analyses``, ``RINGSPOT_PROC=1``), as two machines would: each pool has its own
``DATA_PATH`` (scratch and caches) and reaches the server only through Redis and the Job API.
The plant-virus reference (its OTUs in the database) with a real default-isolate index is put in
place, with two copies of a small real sample (``glrav1-grapevine-125reads`` by default,
``--sample rprsv`` for the 20,000 paired reads): one for a probe analysis, one for the load.

1. Probe: one ``pathoscope_bowtie`` analysis of the probe sample, run to completion; its results
   are the reference every load analysis must reproduce, and its documents are what the idle
   baseline reads.
2. Idle baseline: ``--clients`` threads (``requests.Session`` each, HTTP Basic with an API key)
   poll the reads a REST client makes: ``GET /api/processes/:id``, ``GET /api/analyses/:id``,
   ``GET /api/samples/:id/analyses?page=1`` in turn, ``--interval`` seconds apart (8 clients
   every 0.1 s: as many reads as 80 users polling once a second), for ``--idle-seconds`` after a
   1 s warm-up; the latency of every request is recorded.
3. Load: ``--count`` analyses of the load sample are queued at once through
   ``POST /api/samples/:id/analyses`` (``--enqueuers`` threads), while the same clients poll the
   documents of the analyses queued so far, until every job is finished. (The idle baseline reads
   a ready analysis, whose hits the API joins to their OTUs; under load the analyses read are
   still unready early on, which are cheaper to read.)

Then it checks that none was lost and each ran exactly once: every job ``complete`` with
``attempts == 1``, exactly ``--count`` analysis documents for the load sample, each ``ready``
with results equal to the probe's (read count, hits), one ``process_started`` line per job
across the two pools' logs and nothing left in Redis (queue, delay and dead-letter queues).
It prints the latency figures (count, median, p95, p99, max; under load / idle), the wall time
from the first POST to the last completion, throughput, the split across the pools, the CPU
each service used and any error or warning lines in the logs. Lost or duplicated analyses exit
non-zero; the latency target (read p99 < 100 ms under load) is reported as met / NOT met.

The clients share the 2 cores with the API, the database, both pools and their bowtie2
children (and with anything else running: the load average is printed).
Run: ``.venv/bin/python bench/bench_load.py [--count 200] [--clients 8] [--interval 0.1]``.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import os
import random
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.services import (  # noqa: E402
    Services,
    bench_user,
    free_port,
    percentile,
    run,
    stack_env,
    start_web,
    start_worker,
)
from ringspot.core.analyses import load_results  # noqa: E402
from ringspot.core.db import connect  # noqa: E402
from ringspot.core.processes import FINISHED  # noqa: E402
from tests.analyses_data import (  # noqa: E402
    GLRAV1_READS,
    RPRSV_READS,
    build_index_files,
    insert_index,
    insert_otus,
    insert_reference,
    insert_sample,
    load_otus,
)

TARGET_P99_MS = 100.0
POOLS = ("pool-a", "pool-b")
SAMPLES = {"glrav1": GLRAV1_READS, "rprsv": RPRSV_READS}
ENDPOINTS = ("GET /api/processes/:id", "GET /api/analyses/:id", "GET /api/samples/:id/analyses?page=1")
STARTED = re.compile(r"process_started process_id=(\S+) actor=(\S+)")
TROUBLE = re.compile(r"\[(WARNING|ERROR|CRITICAL)\]|Traceback")


# ---------------------------------------------------------------- the stack


def start_stack(services: Services) -> tuple[dict, str]:
    """nx-27017, Redis, the API and two analyses pools, each pool with its own DATA_PATH."""
    port = free_port()
    env = stack_env(services, port, RINGSPOT_PROC="1")
    start_web(services, env, ROOT)
    for pool in POOLS:
        pool_env = {**env, "dramatiq_worker_timeout": "100", "DATA_PATH": str(services.path / pool)}
        start_worker(services, pool_env, ROOT, "analyses", name=pool, nice=10)  # as the Procfile runs it
    return env, f"http://127.0.0.1:{port}"


def check_alive(services: Services) -> None:
    for name, proc in services.procs:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited with {proc.returncode}:\n{services.tail(name)}")


# ---------------------------------------------------------------- analyses


def enqueue(api: requests.Session, url: str, sample_id: str, ref_id: str) -> tuple[str, str]:
    """Queue one pathoscope_bowtie analysis; returns (job id, analysis id)."""
    response = api.post(
        f"{url}/api/samples/{sample_id}/analyses", json={"workflow": "pathoscope_bowtie", "ref_id": ref_id}
    )
    if response.status_code != 201:
        raise SystemExit(f"POST /api/samples/:id/analyses answered {response.status_code}: {response.text}")
    body = response.json()
    assert response.headers["Content-Location"] == f"/api/processes/{body['job']['id']}"
    return body["job"]["id"], body["id"]


def wait_drained(services: Services, redis_url: str, timeout: float, start: float) -> None:
    """Wait until Redis holds no message of the ``analyses`` queue (nor of its delay queue).

    A message is acknowledged, and leaves ``dramatiq:analyses.msgs``, after the middleware
    recorded its process as finished; watching Redis keeps this loop off the database and the
    API, whose latency is being measured.
    """
    broker = redis.Redis.from_url(redis_url)
    keys = ("dramatiq:analyses.msgs", "dramatiq:analyses.DQ.msgs")
    deadline, shown = time.monotonic() + timeout, time.monotonic()
    while left := sum(broker.hlen(key) for key in keys):
        if time.monotonic() > deadline:
            print(f"  !! gave up after {timeout:.0f} s with {left} messages left in Redis")
            return
        if time.monotonic() - shown >= 30:
            shown = time.monotonic()
            print(f"  {time.perf_counter() - start:6.0f} s: {left} messages not yet acknowledged")
        check_alive(services)
        time.sleep(0.1)


def final_states(db, job_ids: list[str], grace: float = 10.0) -> dict[str, str]:
    """The state of each job, waiting up to ``grace`` seconds for stragglers to finish."""
    deadline = time.monotonic() + grace
    while True:
        states = {d["_id"]: d["state"] for d in db.processes.find({"_id": {"$in": job_ids}}, {"state": 1})}
        if (len(states) == len(job_ids) and all(s in FINISHED for s in states.values())) or time.monotonic() > deadline:
            return states
        time.sleep(1)


def result_signature(results: dict) -> tuple:
    """What two runs of one sample must agree on: the read count and the hits found."""
    hits = sorted(
        (h["id"], h["otu"]["id"], round(h["final"]["pi"], 6), h["final"]["reads"]) for h in results.get("hits") or []
    )
    return results.get("read_count"), tuple(hits)


# ---------------------------------------------------------------- readers


class Readers:
    """``clients`` threads polling a process, an analysis and a sample's list, ``interval`` s apart."""

    def __init__(self, url: str, auth: tuple[str, str], clients: int, interval: float):
        self.url, self.auth, self.clients, self.interval = url, auth, clients, interval
        #: (job id, analysis id, sample id) the clients may read; grows while analyses are queued.
        self.targets: list[tuple[str, str, str]] = []
        self.samples: list[tuple[str, float, int, float]] = []  # (endpoint, ms, status, perf_counter at start)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._stop.clear()
        self.samples = []
        self._threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(self.clients)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> list[tuple[str, float, int, float]]:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        return self.samples

    def _client(self, number: int) -> None:
        session = requests.Session()
        session.auth = self.auth
        rng = random.Random(number)
        turn = number
        while not self._stop.is_set():
            if not self.targets:
                time.sleep(0.01)
                continue
            job_id, analysis_id, sample_id = self.targets[rng.randrange(len(self.targets))]
            endpoint = ENDPOINTS[turn % len(ENDPOINTS)]
            path = (
                f"/api/processes/{job_id}",
                f"/api/analyses/{analysis_id}",
                f"/api/samples/{sample_id}/analyses?page=1",
            )[turn % len(ENDPOINTS)]
            turn += 1
            start = time.perf_counter()
            try:
                status = session.get(self.url + path, timeout=30).status_code
            except requests.RequestException:
                status = 0
            self.samples.append((endpoint, (time.perf_counter() - start) * 1000, status, start))
            self._stop.wait(self.interval)


def latency_line(label: str, ms: list[float], seconds: float) -> str:
    if not ms:
        return f"  {label:<40} no requests"
    return (
        f"  {label:<40} {len(ms):6,} req ({len(ms) / seconds:5.0f}/s)  median {percentile(ms, 0.5):6.1f}  "
        f"p95 {percentile(ms, 0.95):6.1f}  p99 {percentile(ms, 0.99):6.1f}  max {max(ms):7.1f} ms"
    )


def report_latency(title: str, samples: list[tuple[str, float, int, float]], seconds: float) -> list[float]:
    print(f"\n{title} ({seconds:.1f} s):")
    for endpoint in ENDPOINTS:
        print(latency_line(endpoint, [ms for e, ms, _, _ in samples if e == endpoint], seconds))
    every = [ms for _, ms, _, _ in samples]
    print(latency_line("all reads", every, seconds))
    bad = collections.Counter((e, s) for e, _, s, _ in samples if s != 200)
    for (endpoint, status), n in sorted(bad.items()):
        print(f"  !! {n} x {endpoint} answered {status or 'no response'}")
    return every


# ---------------------------------------------------------------- checks


def pool_runs(services: Services) -> dict[str, list[str]]:
    """Job ids each pool started, from its ``process_started`` log lines."""
    return {
        pool: [m.group(1) for m in STARTED.finditer(services.log(pool).read_text(errors="replace"))] for pool in POOLS
    }


def trouble_lines(services: Services) -> dict[str, list[str]]:
    found = {}
    for name in ("web", *POOLS):
        lines = [line for line in services.log(name).read_text(errors="replace").splitlines() if TROUBLE.search(line)]
        if lines:
            found[name] = lines
    return found


def redis_sizes(redis_url: str) -> dict[str, int]:
    """Entries of every dramatiq key: queues, their messages, delay and dead-letter queues, acks."""
    broker = redis.Redis.from_url(redis_url)
    size = {b"list": broker.llen, b"hash": broker.hlen, b"set": broker.scard, b"zset": broker.zcard}
    return {key.decode(): size.get(broker.type(key), lambda _: -1)(key) for key in broker.keys("dramatiq:*")}


def check_none_lost(
    db,
    redis_url: str,
    data_path: str,
    jobs: list[tuple[str, str]],
    states: dict[str, str],
    sample_id: str,
    expected: tuple,
    runs: dict[str, list[str]],
) -> list[str]:
    """Every problem found with the load's jobs and analyses (empty: none lost, each ran once)."""
    problems = []
    job_ids = [job for job, _ in jobs]
    not_complete = {j: s for j, s in states.items() if s != "complete"}
    missing = set(job_ids) - set(states)
    if missing:
        problems.append(f"{len(missing)} process documents missing")
    if not_complete:
        errors = collections.Counter(
            (d["state"], d.get("error")) for d in db.processes.find({"_id": {"$in": list(not_complete)}})
        )
        problems.append(f"{len(not_complete)} jobs not complete: {dict(errors)}")
    attempts = collections.Counter(
        d.get("attempts") for d in db.processes.find({"_id": {"$in": job_ids}}, {"attempts": 1})
    )
    if set(attempts) != {1}:
        problems.append(f"attempts per job: {dict(attempts)} (expected 1 each)")
    documents = db.analyses.count_documents({"sample.id": sample_id})
    if documents != len(jobs):
        problems.append(f"{documents} analysis documents for the load sample, expected {len(jobs)}")
    unready, wrong = 0, 0
    for doc in db.analyses.find({"_id": {"$in": [a for _, a in jobs]}}):
        if not doc.get("ready") or doc.get("results") is None:
            unready += 1
        elif result_signature(load_results(data_path, doc)["results"]) != expected:
            wrong += 1
    if unready:
        problems.append(f"{unready} analyses not ready with results")
    if wrong:
        problems.append(f"{wrong} analyses whose results differ from the probe's")
    started = collections.Counter(j for ids in runs.values() for j in ids)
    twice = [j for j in job_ids if started[j] > 1]
    never = [j for j in job_ids if started[j] == 0]
    if twice:
        problems.append(f"{len(twice)} jobs started more than once (e.g. {twice[0]})")
    if never:
        problems.append(f"{len(never)} jobs with no process_started line in either pool's log")
    left = {key: n for key, n in redis_sizes(redis_url).items() if n and not key.startswith("dramatiq:__heartbeats__")}
    if left:
        problems.append(f"messages left in Redis: {left}")
    return problems


def run_times(
    db, job_ids: list[str]
) -> tuple[list[float], list[float], datetime.datetime | None, datetime.datetime | None]:
    """(seconds queued, seconds running) per job, the first creation and the last completion."""

    def at(text: str) -> datetime.datetime:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))

    queued, running, created, finished = [], [], [], []
    for doc in db.processes.find({"_id": {"$in": job_ids}}, {"created_at": 1, "status": 1}):
        starts = [at(s["timestamp"]) for s in doc["status"] if s["state"] == "running"]
        ends = [at(s["timestamp"]) for s in doc["status"] if s["state"] in FINISHED]
        created.append(at(doc["created_at"]))
        if starts and ends:
            queued.append((starts[0] - at(doc["created_at"])).total_seconds())
            running.append((ends[-1] - starts[0]).total_seconds())
            finished.append(ends[-1])
    return queued, running, min(created, default=None), max(finished, default=None)


# ---------------------------------------------------------------- main


def put_in_place(services: Services, db, env: dict, reads: list[Path]) -> tuple[dict, dict, dict, int]:
    """The reference (OTUs, ready index) and two copies of the sample: (reference, probe, load, OTUs)."""
    otus = load_otus()
    index_files = build_index_files(otus, services.path / "index")
    reference = insert_reference(db, public=True)
    insert_otus(db, reference["_id"], otus)  # GET /api/analyses/:id joins the OTUs hit
    insert_index(db, env["DATA_PATH"], reference["_id"], otus, index_files)
    probe = insert_sample(db, env["DATA_PATH"], reads, user_id="bench")
    load = insert_sample(db, env["DATA_PATH"], reads, user_id="bench")
    return reference, probe, load, len(otus)


def run_probe(
    services: Services, db, env: dict, api: requests.Session, url: str, sample_id: str, ref_id: str
) -> tuple[str, str, dict]:
    """One analysis to completion: (job id, analysis id, results)."""
    job_id, analysis_id = enqueue(api, url, sample_id, ref_id)
    wait_drained(services, env["REDIS_URL"], 120, time.perf_counter())
    state = final_states(db, [job_id]).get(job_id)
    if state != "complete":
        raise SystemExit(f"the probe analysis ended {state}:\n{services.tail(POOLS[0])}\n{services.tail(POOLS[1])}")
    return job_id, analysis_id, load_results(env["DATA_PATH"], db.analyses.find_one({"_id": analysis_id}))["results"]


def queue_all(
    url: str, auth: tuple[str, str], sample_id: str, ref_id: str, count: int, threads: int, readers: Readers
) -> list[tuple[str, str]]:
    """POST ``count`` analyses from ``threads`` threads (a session each); the readers poll each as it comes."""
    local = threading.local()

    def queue_one(_) -> tuple[str, str]:
        if not hasattr(local, "api"):
            local.api = requests.Session()
            local.api.auth = auth
        job = enqueue(local.api, url, sample_id, ref_id)
        readers.targets.append((*job, sample_id))
        return job

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(queue_one, range(count)))


def report_trend(samples: list[tuple[str, float, int, float]], start: float, wall: float, queued_in: float) -> None:
    print(
        latency_line(
            "  reads while the POSTs were in flight",
            [ms for _, ms, _, t in samples if t < start + queued_in],
            queued_in,
        )
    )
    quarters = [[ms for _, ms, _, t in samples if q * wall / 4 <= t - start < (q + 1) * wall / 4] for q in range(4)]
    print(
        "    p99 by quarter of the window:       "
        + " / ".join(f"{percentile(q, 0.99):.0f}" if q else "-" for q in quarters)
        + " ms"
    )


def report_run(
    services: Services,
    db,
    count: int,
    jobs: list[tuple[str, str]],
    states: dict[str, str],
    runs: dict[str, list[str]],
    probe_job: str,
    wall: float,
    cpu: dict[str, float],
    load_average: float,
) -> None:
    job_ids = {j for j, _ in jobs}
    queued, running, first, last = run_times(db, list(job_ids))
    exact_wall = (last - first).total_seconds() if last else wall
    complete = sum(1 for s in states.values() if s == "complete")
    print(
        f"\n{complete} of {count} complete; wall time {exact_wall:.1f} s from the first job created "
        f"to the last finished ({wall:.1f} s as polled), {complete / exact_wall * 60:.0f} analyses/min"
    )
    if running:
        print(
            f"  per analysis: running median {percentile(running, 0.5):.2f} s, p95 {percentile(running, 0.95):.2f} s;"
            f" queued median {percentile(queued, 0.5):.1f} s, max {max(queued):.1f} s"
        )
    for pool in POOLS:
        ran = [j for j in runs[pool] if j in job_ids]
        print(
            f"  {pool}: ran {len(ran)} ({len(ran) / count * 100:.0f} %)"
            + (" + the probe" if probe_job in runs[pool] else "")
        )
    print(
        "  CPU seconds during the load: "
        + ", ".join(f"{n} {s:.0f}" for n, s in cpu.items())
        + f" (of {exact_wall * os.cpu_count():.0f} available); load average after: {load_average:.1f}"
    )
    for name, lines in trouble_lines(services).items():
        print(f"  !! {len(lines)} warning/error lines in the {name} log, e.g.:")
        for line in list(dict.fromkeys(lines))[:5]:
            print(f"       {line[:200]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=200, help="analyses queued at once")
    parser.add_argument("--clients", type=int, default=8, help="polling client threads")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between one client's requests")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="length of the idle baseline")
    parser.add_argument("--enqueuers", type=int, default=4, help="threads POSTing the analyses")
    parser.add_argument("--sample", choices=sorted(SAMPLES), default="glrav1")
    parser.add_argument("--timeout", type=float, help="seconds to wait for the load (default 600 + 10 per analysis)")
    args = parser.parse_args()
    timeout = args.timeout or 600 + 10 * args.count

    with Services("load") as services:
        env, url = start_stack(services)
        db = connect(env["MONGODB_URI"])
        auth = bench_user(db)
        api = requests.Session()
        api.auth = auth
        reference, probe_sample, load_sample, otu_count = put_in_place(services, db, env, SAMPLES[args.sample])

        # 1. The probe: expected results, and documents for the idle baseline to read.
        start = time.perf_counter()
        probe_job, probe_analysis, probe = run_probe(services, db, env, api, url, probe_sample["_id"], reference["_id"])
        expected = result_signature(probe)
        print(
            f"{args.sample} sample, plant-virus reference ({otu_count:,} OTUs); probe analysis "
            f"{time.perf_counter() - start:.1f} s (cold caches): read_count {probe['read_count']:,}, "
            f"{len(probe['hits'])} hits"
        )
        if not probe["hits"]:
            print("  !! the probe found no virus: the load would show nothing about results")
        print(
            f"two analyses pools (1 process x 1 thread, RINGSPOT_PROC=1, own DATA_PATH each), "
            f"API gunicorn 2 x 4 threads, {os.cpu_count()} CPUs, load average before: "
            + ", ".join(f"{x:.2f}" for x in os.getloadavg())
        )
        print(f"{args.clients} polling clients, {args.interval * 1000:.0f} ms between one client's requests")

        # 2. Idle baseline.
        readers = Readers(url, auth, args.clients, args.interval)
        readers.targets.append((probe_job, probe_analysis, probe_sample["_id"]))
        readers.start()
        time.sleep(1)  # warm-up: connections, the API-key cache of each gunicorn worker
        readers.stop()
        readers.start()
        time.sleep(args.idle_seconds)
        idle = report_latency("Idle baseline (reads of the probe)", readers.stop(), args.idle_seconds)

        # 3. The load.
        readers.targets.clear()
        cpu_before = services.cpu_seconds()
        readers.start()
        start = time.perf_counter()
        jobs = queue_all(url, auth, load_sample["_id"], reference["_id"], args.count, args.enqueuers, readers)
        queued_in = time.perf_counter() - start
        print(
            f"\n{args.count} analyses queued in {queued_in:.2f} s ({args.count / queued_in:.0f} POST/s "
            f"from {args.enqueuers} threads, while the clients polled)"
        )
        wait_drained(services, env["REDIS_URL"], timeout, start)
        wall = time.perf_counter() - start
        samples = readers.stop()
        cpu = {name: used - cpu_before.get(name, 0) for name, used in services.cpu_seconds().items()}
        load_average = os.getloadavg()[0]
        loaded = report_latency(f"Under load ({args.count} analyses queued until the last finished)", samples, wall)
        report_trend(samples, start, wall, queued_in)

        # 4. Checks and figures.
        states = final_states(db, [j for j, _ in jobs])
        time.sleep(0.5)  # let the last process_started/finished lines reach the logs
        runs = pool_runs(services)
        problems = check_none_lost(
            db, env["REDIS_URL"], env["DATA_PATH"], jobs, states, load_sample["_id"], expected, runs
        )
        report_run(services, db, args.count, jobs, states, runs, probe_job, wall, cpu, load_average)

        p99, p99_idle = percentile(loaded, 0.99), percentile(idle, 0.99)
        print(
            f"\nread p99 idle {p99_idle:.1f} ms, under load {p99:.1f} ms ({p99 / p99_idle:.1f}x idle); "
            f"median {percentile(idle, 0.5):.1f} -> {percentile(loaded, 0.5):.1f} ms "
            f"({percentile(loaded, 0.5) / percentile(idle, 0.5):.1f}x)"
        )
        print(
            f"read p99 under load: {p99:.1f} ms (target < {TARGET_P99_MS:.0f} ms): "
            f"{'met' if p99 < TARGET_P99_MS else 'NOT met'}"
        )
        if problems:
            raise SystemExit("LOST OR DUPLICATED ANALYSES:\n  " + "\n  ".join(problems))
        print(
            f"none lost: {args.count} jobs complete once each (attempts 1, one process_started line), "
            f"{args.count} ready analyses with the probe's results, Redis queues empty"
        )


if __name__ == "__main__":
    run(main)
