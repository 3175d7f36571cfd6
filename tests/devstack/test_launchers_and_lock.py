"""Launcher and lock behaviour that needs no running stack."""

import json
import os

import pytest

from devstack.dynamodb_local import DynamoDBLocalMissing, find_jar
from devstack.lockfile import AlreadyRunning, StackLock, read_lock


def test_a_missing_dynamodb_local_says_how_to_install_it(tmp_path):
    with pytest.raises(DynamoDBLocalMissing, match=r"make install.*npm ci --prefix devstack"):
        find_jar(tmp_path)


def test_the_jar_is_found_in_devstack_node_modules():
    assert find_jar().name == "DynamoDBLocal.jar"


def test_a_stale_lock_from_a_killed_run_is_ignored(tmp_path):
    lock_file = tmp_path / "devstack.lock"
    lock_file.write_text(json.dumps({"pid": 999_999, "url": "http://127.0.0.1:3000"}))
    assert read_lock(lock_file) is None
    lock = StackLock(lock_file)
    lock.acquire()
    try:
        assert read_lock(lock_file) == {"pid": os.getpid()}
        with pytest.raises(AlreadyRunning, match=r"already runs \(pid \d+\)"):
            StackLock(lock_file).acquire()
    finally:
        lock.release()
    assert not lock_file.exists()
