"""How fast does the API answer ``GET /api/processes/:id`` under load?

Starts a private nx-27017, a private Redis and the API under gunicorn exactly as the
Procfile's ``web`` line runs it, creates an administrator, an API key and one process
document, then runs ``wrk -t2 -c50 -d10s --latency`` (Debian package ``wrk``) against:

* ``GET /api/nothing``: a 404 that touches neither the database nor auth, the floor
  of Flask + gunicorn (+ its access log) on this machine;
* ``GET /api/processes/:id`` with the key as HTTP Basic credentials: the measured
  endpoint (API-key check, cached for a few seconds per process, + one process read);
* the same against a second server with the API-key cache off
  (``bench/uncached_app.py``): two more database reads per request.

It prints requests/s, median and p99 latency against the issue's targets
(>= 1,000 req/s, p99 < 50 ms on 2 cores), the ratios to the floor, and the CPU each
process used meanwhile; then where the time of one request goes, measured in this
process with a Flask test client (plus cProfile) against the same database. wrk shares
the machine with the server, and so does anything else running: the load average
before the run is printed.

Run: ``.venv/bin/python bench/bench_api.py [SECONDS]``. No asserts.
"""

from __future__ import annotations

import base64
import cProfile
import os
import pstats
import re
import resource
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.services import ROOT, VENV_BIN, Services, free_port, run  # noqa: E402

TARGET_RPS = 1000
TARGET_P99_MS = 50.0
CONNECTIONS, THREADS = 50, 2


def procfile_web(env: dict, app: str | None = None) -> list[str]:
    """The Procfile's ``web`` command, optionally serving another app factory."""
    from ringspot.cli.supervisor import read_procfile

    web = next(c for c in read_procfile(ROOT / "Procfile", env) if c.name == "web")
    argv = [str(VENV_BIN / web.argv[0])] + web.argv[1:]
    if app:
        argv = [app if arg.endswith(":create_app()") else arg for arg in argv]
    return argv


def wrk(url: str, seconds: int, headers: dict | None = None, services: Services | None = None) -> dict:
    """Run wrk; with ``services``, also the CPU seconds each service and wrk used meanwhile."""
    before = services.cpu_seconds() if services else {}
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    argv = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run(argv + [url], capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    result = parse_wrk(out)
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if services:
        after = services.cpu_seconds()
        cpu = {name: after[name] - before.get(name, 0.0) for name in after}
        cpu["wrk"] = (wrk_after.ru_utime + wrk_after.ru_stime) - (wrk_before.ru_utime + wrk_before.ru_stime)
        result["cpu"] = {name: seconds_used / seconds for name, seconds_used in cpu.items()}
    return result


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(number) * _UNITS[unit]


def parse_wrk(out: str) -> dict:
    result = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "non_2xx": 0,
        "errors": "",
    }
    for label in ("50", "75", "90", "99"):
        result[f"p{label}"] = _ms(re.search(rf"^\s+{label}%\s+(\S+)", out, re.M).group(1))
    non = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non:
        result["non_2xx"] = int(non.group(1))
    errors = re.search(r"Socket errors:.*", out)
    if errors:
        result["errors"] = errors.group(0)
    return result


def check(url: str, headers: dict, expected: int) -> None:
    request = urllib.request.Request(url, headers=headers)
    try:
        status = urllib.request.urlopen(request, timeout=10).status
    except urllib.error.HTTPError as error:
        status = error.code
    if status != expected:
        raise RuntimeError(f"{url} answered {status}, expected {expected}")


def show(label: str, r: dict, answers_404: bool = False) -> None:
    print(
        f"{label:<28} {r['rps']:>8,.0f} req/s   median {r['p50']:6.2f} ms   p90 {r['p90']:6.2f} ms   "
        f"p99 {r['p99']:6.2f} ms   ({r['requests']:,} requests)"
    )
    if r["non_2xx"] and not answers_404:
        print(f"{'':<28} !! {r['non_2xx']:,} responses were not 2xx/3xx")
    if r["errors"]:
        print(f"{'':<28} !! {r['errors']}")
    if r.get("cpu"):
        cores = ", ".join(f"{name} {used:.2f}" for name, used in r["cpu"].items())
        print(f"{'':<28} CPU cores busy: {cores} (total {sum(r['cpu'].values()):.2f} of {os.cpu_count()})")


def breakdown(mongodb_uri: str, settings_env: dict, process_id: str, user: str, key: str, rounds: int = 400) -> None:
    """Where one request's time goes, in this process (no HTTP server, no concurrency)."""
    os.environ.update(settings_env)
    from ringspot.api import create_app
    from ringspot.api.processes import serialize_process
    from ringspot.core import auth, processes
    from ringspot.core.db import connect
    from ringspot.core.settings import from_env

    app = create_app(from_env())
    client = app.test_client()
    db = connect(mongodb_uri)
    header = {"Authorization": "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()}
    doc = processes.get_process_or_404(db, process_id)

    def per_call(function) -> float:
        for _ in range(20):
            function()
        start = time.perf_counter()
        for _ in range(rounds):
            function()
        return (time.perf_counter() - start) / rounds * 1000

    def full():
        client.get(f"/api/processes/{process_id}", headers=header)

    def serialize():
        with app.test_request_context():
            from ringspot.api.responses import json_response

            json_response(serialize_process(doc))

    parts = [
        ("whole request, test client", per_call(full)),
        ("404 request, test client", per_call(lambda: client.get("/api/nothing"))),
        ("  API-key check, uncached", per_call(lambda: auth._check_api_key(db, user, auth.hash_token(key)))),
        ("  API-key check, cached", per_call(lambda: auth.client_from_api_key(db, user, key))),
        ("  process read (1 find)", per_call(lambda: processes.get_process_or_404(db, process_id))),
        ("  serialize + jsonify", per_call(serialize)),
        ("  ping round trip (floor)", per_call(lambda: db.command("ping"))),
    ]
    print(f"\nOne request, sequential, in this process ({rounds} rounds each):")
    for label, ms in parts:
        print(f"  {label:<30} {ms:7.3f} ms")

    auth.forget_api_keys()
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(rounds):
        full()
    profile.disable()
    stats = pstats.Stats(profile).stats  # (file, line, function) -> (calls, primitive, own, cumulative, callers)
    total = sum(own for _, _, own, _, _ in stats.values())

    def cumulative(path_end: str, function: str) -> float:
        return sum(
            cum for (file, _, name), (_, _, _, cum, _) in stats.items() if file.endswith(path_end) and name == function
        )

    def own(predicate) -> float:
        return sum(own for (file, _, name), (_, _, own, _, _) in stats.items() if predicate(file, name))

    print(
        f"\ncProfile of {rounds} requests with the key cache on "
        f"({total * 1000 / rounds:.2f} ms per request under the profiler):"
    )
    shares = [
        ("auth (check_access), cumulative", cumulative("ringspot/api/auth.py", "check_access")),
        ("view (processes.get), cumulative", cumulative("ringspot/api/processes.py", "get")),
        ("waiting on nx-27017 (socket send/recv)", own(lambda f, n: f == "~" and ("recv_into" in n or "sendall" in n))),
        ("pymongo + bson, own time", own(lambda f, n: "/pymongo/" in f or "/bson/" in f)),
        ("flask + werkzeug, own time", own(lambda f, n: "/flask/" in f or "/werkzeug/" in f)),
    ]
    for label, seconds in shares:
        print(f"  {label:<40} {seconds / total * 100:5.1f} %")


def main(seconds: int = 10) -> None:
    with Services("api") as services:
        base = services.database()
        redis_url = services.redis()
        env = {
            **os.environ,
            "MONGODB_URI": f"{base}/ringspot_bench",
            "REDIS_URL": redis_url,
            "DATA_PATH": str(services.path / "data"),
            "RINGSPOT_HOST": "127.0.0.1",
        }
        env.pop("BROKER_URL", None)
        from ringspot.core import auth, processes
        from ringspot.core.db import connect

        db = connect(env["MONGODB_URI"])
        user = auth.create_user(db, "bench", "bench-password", administrator=True)
        _, key = auth.create_api_key(db, user, "bench", {p: True for p in auth.PERMISSIONS})
        process, _ = processes.create_process(
            db,
            "delete_reference",
            user_id="bench",
            context={"ref_id": "r1"},
            steps=[{"name": "delete_indexes", "description": "Delete the indexes."}],
        )
        header = {"Authorization": "Basic " + base64.b64encode(f"bench:{key}".encode()).decode()}

        ports = {"web": free_port(), "web-uncached": free_port()}
        for name, app in (("web", None), ("web-uncached", "bench.uncached_app:create_app()")):
            server_env = {**env, "RINGSPOT_PORT": str(ports[name])}
            services.start(name, procfile_web(server_env, app), env=server_env, cwd=ROOT)
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        for name, url in urls.items():
            services.wait_port(name, ports[name])
            check(f"{url}/api/processes/{process['_id']}", header, 200)
            check(f"{url}/api/nothing", {}, 404)
            wrk(f"{url}/api/processes/{process['_id']}", 2, header)  # warm-up: connections, imports
        url, uncached_url = urls["web"], urls["web-uncached"]

        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(
            f"API on {os.cpu_count()} CPUs (load average before the run: {load}): "
            f"{' '.join(procfile_web({**env, 'RINGSPOT_PORT': str(ports['web'])})[1:])}"
        )
        print(f"wrk -t{THREADS} -c{CONNECTIONS} -d{seconds}s on the same machine\n")
        floor = wrk(f"{url}/api/nothing", seconds, services=services)
        show("GET /api/nothing (404)", floor, answers_404=True)
        measured = wrk(f"{url}/api/processes/{process['_id']}", seconds, header, services=services)
        show("GET /api/processes/:id", measured)
        uncached = wrk(f"{uncached_url}/api/processes/{process['_id']}", seconds, header, services=services)
        show("  same, key cache off", uncached)

        print(
            f"\nrequests/s: {measured['rps']:,.0f} vs target >= {TARGET_RPS:,}  "
            f"({measured['rps'] / TARGET_RPS:.2f}x the target, {measured['rps'] / floor['rps']:.2f}x the 404 floor, "
            f"{measured['rps'] / uncached['rps']:.2f}x without the key cache)"
        )
        print(
            f"p99:        {measured['p99']:.1f} ms vs target < {TARGET_P99_MS:.0f} ms  "
            f"({measured['p99'] / TARGET_P99_MS:.2f}x the target, {measured['p99'] / floor['p99']:.2f}x the 404 floor, "
            f"{measured['p99'] / uncached['p99']:.2f}x without the key cache)"
        )
        print(
            f"median:     {measured['p50']:.1f} ms ({measured['p50'] / floor['p50']:.2f}x the 404 floor, "
            f"{measured['p50'] / uncached['p50']:.2f}x without the key cache)"
        )

        services.close_one("web-uncached")
        services.close_one("web")
        breakdown(
            env["MONGODB_URI"],
            {k: env[k] for k in ("MONGODB_URI", "REDIS_URL", "DATA_PATH")},
            process["_id"],
            "bench",
            key,
        )


if __name__ == "__main__":
    run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 10)
