"""Settings of one local AWS stack: where it listens, where it keeps state.

Everything comes from the environment so that ``make``, pytest fixtures and a
user's shell configure it the same way:

``LOCAL_AWS_PORT``          endpoint port (default 5000)
``LOCAL_AWS_STATE_DIR``     state folder (default ``.local`` in the project)
``LOCAL_PG_LEGACY_PORT``    port of the "legacy server" PostgreSQL (15432)
``LOCAL_EB_DELAY_S``        seconds of each Elastic Beanstalk transition (2)
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

HOST = "127.0.0.1"  # never anything but loopback
DEFAULT_REGION = "us-east-1"
# Fake credentials: moto accepts any; these are not secrets.
ACCESS_KEY = "local-access-key"
SECRET_KEY = "local-secret-key"  # noqa: S105 - a placeholder moto ignores


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise SystemExit(f"{name}={value!r} is not a port number") from exc


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise SystemExit(f"{name}={value!r} is not a number of seconds") from exc


@dataclass
class Settings:
    port: int = 5000
    state_dir: Path = field(default_factory=lambda: Path(".local"))
    legacy_pg_port: int = 15432
    eb_delay_s: float = 2.0
    host: str = HOST

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            port=_env_int("LOCAL_AWS_PORT", 5000),
            state_dir=Path(os.environ.get("LOCAL_AWS_STATE_DIR", ".local")).resolve(),
            legacy_pg_port=_env_int("LOCAL_PG_LEGACY_PORT", 15432),
            eb_delay_s=_env_float("LOCAL_EB_DELAY_S", 2.0),
        )

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "server.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "server.log"

    @property
    def pg_dir(self) -> Path:
        return self.state_dir / "pg"

    def to_json(self) -> dict:
        data = asdict(self)
        data["state_dir"] = str(self.state_dir)
        data["endpoint"] = self.endpoint
        return data

    def save(self, extra: dict | None = None) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        data = self.to_json()
        data.update(extra or {})
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.state_file)

    def load_state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {}
