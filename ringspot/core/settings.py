"""Settings read from the environment, one frozen object passed around explicitly."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from ..bio.diagnosis import Thresholds


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def diagnosis_from_env() -> Thresholds:
    """The calls' thresholds: ``RINGSPOT_DIAGNOSIS_MIN_READS``, ``_MIN_BREADTH`` (a fraction),
    ``_MIN_EVENNESS`` and ``_MIN_POSSIBLE_READS``; defaults measured on the real samples (README)."""
    default = Thresholds()
    return Thresholds(
        min_reads=_int("RINGSPOT_DIAGNOSIS_MIN_READS", default.min_reads),
        min_breadth=_float("RINGSPOT_DIAGNOSIS_MIN_BREADTH", default.min_breadth),
        min_evenness=_float("RINGSPOT_DIAGNOSIS_MIN_EVENNESS", default.min_evenness),
        min_possible_reads=_int("RINGSPOT_DIAGNOSIS_MIN_POSSIBLE_READS", default.min_possible_reads),
    )


@dataclass(frozen=True)
class Settings:
    mongodb_uri: str = "mongodb://127.0.0.1:27017/ringspot"
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: ``redis://...`` (default: ``redis_url``), ``amqp://...`` for RabbitMQ, or ``stub`` in tests.
    broker_url: str = ""
    data_path: str = "./data"
    host: str = "127.0.0.1"
    port: int = 9950
    #: Where job workers reach the Job API (a worker machine needs only this and the broker).
    api_url: str = "http://127.0.0.1:9950"
    admin_user: str = ""
    admin_password: str = ""
    max_upload_bytes: int = 8 * 1024**3
    #: Largest request body on every route that does not take a file (sign-in included): 413 above.
    max_json_bytes: int = 1024**2
    #: Threads given to bowtie2, SPAdes and HMMER inside one job.
    proc: int = 2
    mem_gb: int = 8
    #: Seconds a tool may run before it is killed.
    tool_timeout: int = 6 * 3600
    #: Seconds without a heartbeat (sent every second) after which a running process is presumed
    #: dead and its redelivered message may run it again; as long as the Redis broker's own
    #: consumer heartbeat timeout, so a crashed worker's job reruns about 30 s after the crash.
    heartbeat_timeout: int = 30
    minimum_password_length: int = 10
    #: Base URL of the release source for remote references (GitHub's API shape).
    release_base_url: str = "https://api.github.com"
    blast_backend: str = "ncbi"
    blast_url: str = "https://blast.ncbi.nlm.nih.gov/Blast.cgi"
    #: What a Pathoscope diagnosis needs to call a virus ``detected`` or ``possible``.
    diagnosis: Thresholds = field(default_factory=Thresholds)
    #: Session cookies marked ``Secure`` (sent only over HTTPS): set when the service is behind HTTPS.
    secure_cookies: bool = False
    #: Host names requests may carry (and generated links use); empty accepts any (``RINGSPOT_TRUSTED_HOSTS``,
    #: comma-separated; a leading dot admits subdomains).
    trusted_hosts: tuple[str, ...] = ()
    #: Webhooks may target loopback, link-local and private addresses (a lab's own receivers, tests).
    webhooks_allow_private: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)


def from_env() -> Settings:
    """Build settings from ``RINGSPOT_*``, ``MONGODB_URI``, ``REDIS_URL`` and ``BROKER_URL``."""
    port = _int("RINGSPOT_PORT", 9950)
    host = os.environ.get("RINGSPOT_HOST", "127.0.0.1")
    return Settings(
        mongodb_uri=os.environ.get("MONGODB_URI", Settings.mongodb_uri),
        redis_url=os.environ.get("REDIS_URL", Settings.redis_url),
        broker_url=os.environ.get("BROKER_URL", ""),
        data_path=os.path.abspath(os.environ.get("DATA_PATH", Settings.data_path)),
        host=host,
        port=port,
        api_url=os.environ.get("RINGSPOT_API_URL", f"http://{host}:{port}"),
        admin_user=os.environ.get("RINGSPOT_ADMIN_USER", ""),
        admin_password=os.environ.get("RINGSPOT_ADMIN_PASSWORD", ""),
        max_upload_bytes=_int("RINGSPOT_MAX_UPLOAD_BYTES", Settings.max_upload_bytes),
        max_json_bytes=_int("RINGSPOT_MAX_JSON_BYTES", Settings.max_json_bytes),
        proc=_int("RINGSPOT_PROC", min(2, os.cpu_count() or 1)),
        mem_gb=_int("RINGSPOT_MEM_GB", Settings.mem_gb),
        tool_timeout=_int("RINGSPOT_TOOL_TIMEOUT", Settings.tool_timeout),
        heartbeat_timeout=_int("RINGSPOT_HEARTBEAT_TIMEOUT", Settings.heartbeat_timeout),
        release_base_url=os.environ.get("RINGSPOT_RELEASE_URL", Settings.release_base_url),
        blast_backend=os.environ.get("RINGSPOT_BLAST_BACKEND", Settings.blast_backend),
        blast_url=os.environ.get("RINGSPOT_BLAST_URL", Settings.blast_url),
        diagnosis=diagnosis_from_env(),
        secure_cookies=_flag("RINGSPOT_SECURE_COOKIES"),
        trusted_hosts=tuple(h.strip() for h in os.environ.get("RINGSPOT_TRUSTED_HOSTS", "").split(",") if h.strip()),
        webhooks_allow_private=_flag("RINGSPOT_WEBHOOKS_ALLOW_PRIVATE"),
    )
