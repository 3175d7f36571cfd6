"""python -m devstack: run | token | clock | schedules | redrive | status."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .clock import Clock, parse_duration
from .lockfile import AlreadyRunning, read_lock
from .parameters import Override, banner_lines, effective_overrides
from .paths import PROJECT_ROOT, data_dir
from .template import TemplateError


def _banner(stack: Any, overrides: Mapping[str, Override] | None = None) -> str:
    url = stack.url
    functions = ", ".join(stack.template.functions) or "none"
    curl = (
        f"curl -s -X POST {url}/capture/form -d first_name=Ada -d last_name=Lovelace -d email=ada@example.com"
    )
    # The docs line appears once the template routes /docs to a function; the banner only shows what answers.
    has_docs = any(route.path == "/docs" for route in stack.template.routes)
    docs = [f"  API docs   {url}/docs   (OpenAPI: {url}/openapi.json)"] if has_docs else []
    has_console = any(route.path.startswith("/app") for route in stack.template.routes)
    console = [f"  Console    {url}/app/   (sign in as rep1, manager, …: no password)"] if has_console else []
    return "\n".join(
        [
            "",
            f"LeadFlow local stack is up ({stack.startup_seconds:.1f}s)",
            f"  API        {url}",
            *console,
            *docs,
            f"  Outbox     {url}/_local/outbox   (JSON: {url}/_local/outbox.json)",
            f"  Events     {url}/_local/events   (the last domain events published, ?last=N)",
            f"  JWKS       {url}/_local/jwks.json",
            f"  Data       {stack.data.root}",
            f"  Functions  {functions}",
            *banner_lines(getattr(stack.template, "parameters", {}), overrides or {}),
            "  Tokens     make token ROLE=manager   (one user: make token AS=rep2)",
            "  Clock      .venv/bin/python -m devstack clock advance 1d   (then make token again)",
            "",
            "Capture a lead:",
            f"  {curl}",
            "",
            "Ctrl-C stops everything.",
            "",
        ]
    )


def cmd_run(args: argparse.Namespace) -> int:
    from .stack import LocalStack, print_line

    try:
        overrides = effective_overrides(PROJECT_ROOT / "samconfig.toml", args.parameter_overrides)
    except ValueError as exc:
        print(f"parameter overrides: {exc}", file=sys.stderr)
        return 2
    stack = LocalStack(
        port=args.port,
        data_dir=args.data_dir,
        template_path=args.template,
        parameter_overrides={name: override.value for name, override in overrides.items()},
    )
    stopping = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        stack.start()
    except AlreadyRunning as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"could not start the local stack: {exc}", file=sys.stderr)
        return 1
    except TemplateError as exc:  # an unknown parameter, or a value the template does not allow
        print(f"could not start the local stack: {exc}", file=sys.stderr)
        return 2
    print_line(_banner(stack, overrides))
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        print_line("Stopping the local stack...")
        stack.stop()
        print_line("Stopped.")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from .auth import issue_token, load_or_create_key
    from .seed import load_seed
    from .stack import local_client_id
    from .template import load_template

    data = data_dir(args.data_dir)
    seed = load_seed()
    try:
        user = seed.user(username=args.user, role=None if args.user else args.role)
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return 2
    key = load_or_create_key(data.jwt_key)
    client_id = local_client_id(load_template(args.template))
    print(issue_token(key, user, client_id, Clock(data.clock_file).time()))
    return 0


def cmd_clock(args: argparse.Namespace) -> int:
    clock = Clock(data_dir(args.data_dir).clock_file)
    if args.action == "advance":
        try:
            seconds = parse_duration(args.duration or "")
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        running = read_lock(data_dir(args.data_dir).lock_file)
        if running and running.get("url"):
            # Through the running stack, so due schedules fire before this returns.
            _post(running["url"] + "/_local/clock", {"advance_seconds": seconds})
        else:
            clock.advance(seconds)
    elif args.action == "reset":
        clock.set_offset(0)
    print(f"offset {clock.offset():+.0f}s, now {clock.now().isoformat(timespec='seconds')}")
    return 0


def _running_url(args: argparse.Namespace) -> str | None:
    running = read_lock(data_dir(args.data_dir).lock_file)
    if not running or not running.get("url"):
        print(
            f"the local stack is not running (data folder {data_dir(args.data_dir).root}); "
            "start it with make dev",
            file=sys.stderr,
        )
        return None
    return str(running["url"])


def _post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(  # noqa: S310 - the stack's own http URL
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - the stack's own http URL
        return json.loads(response.read())


def _event_argument(value: str | None) -> dict[str, Any]:
    """`--event '{"day": "2026-11-24"}'` or `--event @file.json`: a JSON object ({} when not given)."""
    if value is None:
        return {}
    try:
        text = Path(value[1:]).read_text() if value.startswith("@") else value
    except OSError as exc:
        raise ValueError(str(exc)) from None
    try:
        event = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise ValueError("must be a JSON object")
    return event


def cmd_schedules(args: argparse.Namespace) -> int:
    url = _running_url(args)
    if url is None:
        return 1
    try:
        event = _event_argument(args.event)
    except ValueError as exc:
        print(f"--event: {exc}", file=sys.stderr)
        return 2
    try:
        results = _post(f"{url}/_local/schedules/{urllib.parse.quote(args.name, safe='')}", event)
    except urllib.error.HTTPError as exc:
        print(json.loads(exc.read()).get("message"), file=sys.stderr)
        return 1
    for result in results:
        print(
            f"{result['name']} -> {result['target_arn']}: "
            + ("ok" if result["ok"] else "failed " + result["detail"])
        )
        if result.get("response") is not None:
            print(json.dumps(result["response"]))
    return 0 if all(r["ok"] for r in results) else 1


def cmd_redrive(args: argparse.Namespace) -> int:
    url = _running_url(args)
    if url is None:
        return 1
    moved = _post(f"{url}/_local/redrive", {"queue": args.queue})
    if not moved:
        print("no queue with a dead-letter queue" + (f" matches {args.queue}" if args.queue else ""))
    for queue, count in moved.items():
        if queue.endswith("FailureQueue"):  # a stream mapping's on-failure queue: its batches replayed
            print(f"{queue}: {count} failed stream batch(es) read again and delivered to their function")
        else:
            print(f"{queue}: moved {count} message(s) back from its dead-letter queue")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    running = read_lock(data_dir(args.data_dir).lock_file)
    if running:
        print(f"running (pid {running.get('pid')}) on {running.get('url')}")
        return 0
    print("not running")
    return 1


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, default=None, help="data folder (default .devstack/data)")
    common.add_argument("--template", default="template.yaml")
    commands = root.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", parents=[common], help="run the whole system locally")
    run.add_argument("--port", type=int, default=3000, help="HTTP port (0 picks a free one)")
    run.add_argument(
        "--parameter-overrides",
        default=None,
        help='deploy parameters as SAM takes them: "ScoreHalfLifeDays=7 SalesThreshold=60"',
    )
    run.set_defaults(func=cmd_run)

    token = commands.add_parser("token", parents=[common], help="print a JWT for a demo user")
    who = token.add_mutually_exclusive_group()
    who.add_argument("--role", default="rep", help="admin, manager or rep")
    who.add_argument("--user", help="a demo username, e.g. rep2")
    token.set_defaults(func=cmd_token)

    clock = commands.add_parser("clock", parents=[common], help="show or move the stack's clock")
    clock.add_argument("action", choices=["show", "advance", "reset"])
    clock.add_argument("duration", nargs="?", help="for advance: 90s, 15m, 2h, 1d, 1w")
    clock.set_defaults(func=cmd_clock)

    schedules = commands.add_parser("schedules", parents=[common], help="fire a schedule now")
    schedules.add_argument("action", choices=["run"])
    schedules.add_argument("name", help="function logical id, rule/schedule name, or runtime schedule name")
    schedules.add_argument(
        "--event",
        help='the event to send instead of the scheduled one: JSON (\'{"day": "2026-11-24"}\') or @file.json',
    )
    schedules.set_defaults(func=cmd_schedules)

    redrive = commands.add_parser(
        "redrive",
        parents=[common],
        help="move DLQ messages back to their queue; replay the stream batches in on-failure queues",
    )
    redrive.add_argument("--queue", help="source queue or DLQ (logical id or name); default: all")
    redrive.set_defaults(func=cmd_redrive)

    status = commands.add_parser("status", parents=[common], help="is the local stack running?")
    status.set_defaults(func=cmd_status)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.func(args)
    return code
