"""Where things live: the project root, the data folder and the files kept in it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEVSTACK_DIR = Path(__file__).resolve().parent
DEFAULT_DATA_DIR = PROJECT_ROOT / ".devstack" / "data"
SEED_FILE = DEVSTACK_DIR / "seed.json"


@dataclass(frozen=True)
class DataDir:
    """The files of one local stack's data folder; everything that must survive a restart lives here."""

    root: Path

    @property
    def dynamodb(self) -> Path:
        return self.root / "dynamodb"

    @property
    def clock_file(self) -> Path:
        return self.root / "clock.json"

    @property
    def jwt_key(self) -> Path:
        return self.root / "jwt-private-key.pem"

    @property
    def lock_file(self) -> Path:
        return self.root / "devstack.lock"

    @property
    def checkpoints(self) -> Path:
        return self.root / "stream-checkpoints.json"

    @property
    def schedules(self) -> Path:
        return self.root / "schedules.json"

    @property
    def aws_config(self) -> Path:
        # Points the workers' AWS_CONFIG_FILE at an empty spot so a developer's ~/.aws cannot leak in.
        return self.root / "aws-config-empty"

    def ensure(self) -> DataDir:
        self.root.mkdir(parents=True, exist_ok=True)
        self.dynamodb.mkdir(parents=True, exist_ok=True)
        return self


def data_dir(path: str | Path | None) -> DataDir:
    return DataDir(Path(path).resolve() if path is not None else DEFAULT_DATA_DIR)
