"""The token file stays private: modes, owners, symlinks, and file systems that refuse."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from requests_twitch import InsecureTokenFileWarning, JSONTokenStore, Token, TokenStoreError

from _helpers import store_with

CID = "client"
NOBODY = 65534
needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to create files owned by another user"
)


def write_store(path: Path, token: Token = Token("a", refresh_token="r")) -> JSONTokenStore:
    return store_with(JSONTokenStore(path), CID, "user", token)


def test_a_file_others_can_read_is_warned_about_once_and_never_widened(
    token_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_store(token_file)
    token_file.chmod(0o640)
    store = JSONTokenStore(token_file)
    with pytest.warns(InsecureTokenFileWarning, match=r"mode 0640.*chmod 600"):
        assert store.load(CID, "user") == Token("a", refresh_token="r")
    assert "chmod 600" in caplog.text
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store.load(CID, "user")  # said once per file and mode, not per read
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o640  # reading never changes it


@needs_root
def test_a_symlink_planted_by_another_user_is_not_followed(token_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "victim.json"
    target.write_text("precious")
    token_file.parent.mkdir(mode=0o700)
    token_file.symlink_to(target)
    os.lchown(token_file, NOBODY, NOBODY)
    with pytest.raises(TokenStoreError, match="symbolic link owned by another user") as info:
        write_store(token_file)
    assert info.value.path == str(token_file)
    assert target.read_text() == "precious"


def test_a_symlink_of_ones_own_is_followed_once_and_kept(token_file: Path, tmp_path: Path) -> None:
    real = tmp_path / "real" / "tokens.json"
    write_store(real)
    token_file.parent.mkdir(mode=0o700)
    token_file.symlink_to(real)
    store = write_store(token_file, Token("b"))
    assert store.path == str(real)  # every process locks beside the real file
    assert token_file.is_symlink() and JSONTokenStore(real).load(CID, "user") == Token("b")


def test_a_symlink_that_appears_later_is_refused(token_file: Path, tmp_path: Path) -> None:
    store = write_store(token_file)
    elsewhere = tmp_path / "elsewhere.json"
    shutil.copy(token_file, elsewhere)
    token_file.unlink()
    token_file.symlink_to(elsewhere)
    with pytest.raises(TokenStoreError, match="symbolic link"):
        store.load(CID, "user")


def test_a_symlink_planted_at_the_lock_file_is_refused(token_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "victim.txt"
    target.write_text("precious")
    token_file.parent.mkdir(mode=0o700)
    Path(str(token_file) + ".lock").symlink_to(target)
    with pytest.raises(TokenStoreError, match="lock file"):
        write_store(token_file)
    assert target.read_text() == "precious" and not token_file.exists()


@needs_root
def test_a_token_file_owned_by_another_user_is_refused(token_file: Path) -> None:
    write_store(token_file)
    os.chown(token_file, NOBODY, NOBODY)
    before = token_file.read_bytes()
    with pytest.raises(TokenStoreError, match="belongs to another user"):
        JSONTokenStore(token_file).load(CID, "user")
    assert token_file.read_bytes() == before


CHECK = textwrap.dedent(
    """
    import sys
    from requests_twitch import JSONTokenStore, Token, TokenStoreError
    store = JSONTokenStore(sys.argv[1])
    try:
        print("load:", store.load("client", "user"))
    except TokenStoreError as exc:
        print("load error:", exc.path, "|", exc)
    try:
        with store.lock():
            store.save("client", "user", Token("new"))
        print("saved")
    except TokenStoreError as exc:
        print("save error:", exc.path, "|", exc)
    """
)


def run_confined(wrapper: list[str], path: Path) -> str:
    if shutil.which(wrapper[0]) is None:
        pytest.skip(f"{wrapper[0]} is not installed")
    result = subprocess.run([*wrapper, sys.executable, "-c", CHECK, str(path)], capture_output=True, text=True,
                            timeout=120)
    if result.returncode != 0 and "Operation not permitted" in result.stderr:
        pytest.skip(f"{wrapper[0]} is not permitted here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_an_unreadable_file_is_a_clear_error_and_is_kept(token_file: Path) -> None:
    write_store(token_file)
    before = token_file.read_bytes()
    token_file.chmod(0)
    # Drop the capabilities that let root read anything, so the check means the same for everyone.
    out = run_confined(["setpriv", "--bounding-set=-dac_override,-dac_read_search"], token_file)
    assert f"load error: {token_file} | {token_file}: cannot read the token file: Permission denied" in out
    assert "save error:" in out
    token_file.chmod(0o600)
    assert token_file.read_bytes() == before


def test_a_read_only_file_system_still_reads_and_refuses_to_write_clearly(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    script = (
        f"mount -t tmpfs tmpfs {folder} && "
        f"{sys.executable} -c 'import sys; from requests_twitch import JSONTokenStore, Token; s = JSONTokenStore(sys.argv[1]);"
        f" l = s.lock(); l.__enter__(); s.save(\"client\", \"user\", Token(\"a\")); l.__exit__(None, None, None)' {folder}/tokens.json && "
        f"mount -o remount,ro {folder} && "
        f"{sys.executable} -c \"$CHECK\" {folder}/tokens.json"
    )
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    result = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "CHECK": CHECK})
    if "Operation not permitted" in result.stderr or "unshare failed" in result.stderr:
        pytest.skip(f"mount namespaces are not permitted here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    assert "load: Token(kind='user', access_token=<redacted>" in result.stdout
    assert f"save error: {folder}/tokens.json |" in result.stdout
    assert "Read-only file system" in result.stdout
