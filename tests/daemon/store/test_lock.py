from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.errors import StateError
from daemon.store.lock import StateLock


def test_second_lock_on_the_same_state_dir_names_the_holder(tmp_path: Path) -> None:
    with StateLock(tmp_path), pytest.raises(StateError) as info:
        StateLock(tmp_path).acquire()
    assert f"pid {os.getpid()}" in str(info.value)
    assert str(tmp_path) in str(info.value)


def test_lock_is_free_again_after_release(tmp_path: Path) -> None:
    with StateLock(tmp_path):
        pass
    with StateLock(tmp_path):
        pass


def test_lock_of_a_killed_process_does_not_block(tmp_path: Path) -> None:
    code = (
        "import os, sys; from pathlib import Path; from daemon.store.lock import StateLock; "
        f"StateLock(Path({str(tmp_path)!r})).acquire(); os.kill(os.getpid(), 9)"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False)
    assert proc.returncode == -9
    with StateLock(tmp_path):
        pass
