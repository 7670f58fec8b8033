"""Output files (:mod:`medseg.files`): a killed write leaves a hidden temporary that the next write of the same
target removes; files get the umask's permissions; output paths are checked before any work."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from medseg.files import OutputPathError, atomic_path, check_output_file, check_output_folder
from medseg.tasks import prepare_datalist

KILLED_WRITER = """
import sys, time
from medseg.files import atomic_path
with atomic_path(sys.argv[1]) as temporary:
    temporary.write_text('{"partial": ')
    print(temporary, flush=True)
    time.sleep(600)
"""


def test_a_write_killed_before_its_rename_is_cleaned_by_the_next_run(synthetic, tmp_path):
    """SIGKILL inside the write (nothing can run on the way out): the next ``medseg prepare`` to the same target
    removes the hidden temporary, and leaves the temporaries of other targets alone."""
    target = tmp_path / "datalist.json"
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    temporary = Path(writer.stdout.readline().strip())
    writer.kill()
    writer.wait(timeout=60)
    assert temporary.exists() and temporary.name.startswith(".datalist.json.") and temporary.name.endswith(".tmp.json")
    assert not target.exists()
    other = tmp_path / ".datalist2.json.abcd.tmp.json"  # another target's: not this write's to remove
    other.write_text("{}")
    prepare_datalist("cxr", synthetic("cxr", n=4), target, n_folds=0)
    assert json.loads(target.read_text())["numTraining"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, "datalist.json"]


def test_names_with_glob_characters_clean_only_their_own_temporaries(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(gone.stdout)  # a process that has ended: its temporaries are stale
    ours, theirs = tmp_path / f".a[1].json.{pid}_x1.tmp.json", tmp_path / f".a1.json.{pid}_x2.tmp.json"
    ours.write_text("")
    theirs.write_text("")  # ".a[1].json.*" read as a glob pattern would match this one
    with atomic_path(tmp_path / "a[1].json") as temporary:
        temporary.write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [theirs.name, "a[1].json"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_datalists_get_the_umasks_permissions(synthetic, tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        out = prepare_datalist("cxr", synthetic("cxr", n=4), tmp_path / "d.json", n_folds=0).out
    finally:
        os.umask(previous)
    assert stat.S_IMODE(Path(out).stat().st_mode) == mode  # what open() would give: 0o666 without the umask's bits


def test_output_paths_are_checked_without_writing(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputPathError, match="is a folder"):
        check_output_file(tmp_path)
    with pytest.raises(OutputPathError, match=r"file is not a folder, so .*file/sub cannot be made"):
        check_output_file(tmp_path / "file" / "sub" / "d.json")
    with pytest.raises(OutputPathError, match="is a file, not a folder"):
        check_output_folder(tmp_path / "file")
    with pytest.raises(OutputPathError, match=r"is not empty \(1 entries: file\)"):
        check_output_folder(tmp_path, empty=True)
    assert check_output_file(tmp_path / "new" / "deeper" / "d.json") == tmp_path / "new" / "deeper" / "d.json"
    check_output_folder(tmp_path / "new", empty=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing made, no probe left
