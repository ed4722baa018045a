"""``rl-alphamaml data omniglot`` against a local HTTP server (no internet): download, checksum, atomic writes,
offline and mismatch errors, files already there, and the loader finding the user data folder."""

from __future__ import annotations

import hashlib
import http.server
import io
import random
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from rl_alphamaml.cli import main
from rl_alphamaml.supervised import omniglot_download
from rl_alphamaml.supervised.omniglot_data import OmniglotDataError, resolve_root

if TYPE_CHECKING:
    from conftest import SmallDisk  # tests/conftest.py


def fake_zip(name: str, extra: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{name.removesuffix('.zip')}/Alphabet/character01/0001_01.png", b"not really a png" + extra)
    return buffer.getvalue()


class Server:
    """Serves ``files`` on 127.0.0.1 and counts the requests."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files, self.requests = files, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                body = outer.files.get(self.path.rsplit("/", 1)[-1])
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/python/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    files = {name: fake_zip(name) for name in omniglot_download.FILES}
    # The official sums stand for these small files' sums, as the real zips' sums stand for theirs.
    monkeypatch.setattr(omniglot_download, "FILES", {n: hashlib.md5(b).hexdigest() for n, b in files.items()})
    served = Server(files)
    yield served
    served.httpd.shutdown()


def run(root: Path, url: str) -> int:
    return main(["data", "omniglot", "--root", str(root), "--url", url])


def test_download_verifies_and_writes_both_zips(server: Server, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, server.url) == 0
    for name, body in server.files.items():
        assert (tmp_path / name).read_bytes() == body
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(server.files)  # no .part files left
    assert "verified" in capsys.readouterr().err
    # Valid files already there: nothing is downloaded again.
    server.requests.clear()
    assert run(tmp_path, server.url) == 0
    assert server.requests == [] and capsys.readouterr().err.count("already there") == 2


def test_a_checksum_mismatch_keeps_nothing(server: Server, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    server.files["images_evaluation.zip"] = fake_zip("images_evaluation.zip") + b"tampered"
    assert run(tmp_path, server.url) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("rl-alphamaml: error:") and "checksum mismatch" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images_background.zip"]  # the good one stays


def test_offline_is_one_line_and_leaves_no_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    closed = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    port = closed.server_address[1]
    closed.server_close()  # nothing listens there now
    assert run(tmp_path, f"http://127.0.0.1:{port}/python/") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("rl-alphamaml: error: cannot download") and "offline?" in err
    assert list(tmp_path.iterdir()) == []


def test_a_valid_local_copy_with_other_checksums_is_kept(server: Server, tmp_path: Path) -> None:
    # e.g. ../shared/omniglot, rebuilt pixel-exact from another source: a readable zip of the right set.
    for name in server.files:
        (tmp_path / name).write_bytes(fake_zip(name))
        with zipfile.ZipFile(tmp_path / name, "a") as archive:
            archive.writestr(f"{name.removesuffix('.zip')}/Other/character01/0001_01.png", b"x")
    assert run(tmp_path, server.url) == 0
    assert server.requests == []


def test_the_loader_finds_the_user_data_folder(server: Server, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RL_ALPHAMAML_OMNIGLOT", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with pytest.raises(OmniglotDataError, match="rl-alphamaml data omniglot"):
        resolve_root(None)
    assert main(["data", "omniglot", "--url", server.url]) == 0
    assert resolve_root(None) == tmp_path / "data" / "rl_alphamaml" / "omniglot"
    assert (resolve_root(None) / "images_background.zip").is_file()


def test_a_full_disk_keeps_the_zips_already_there_and_no_part(server: Server, small_disk: SmallDisk,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    big = fake_zip("images_evaluation.zip", extra=random.Random(0).randbytes(200_000))  # 49 pages, incompressible
    server.files["images_evaluation.zip"] = big
    monkeypatch.setitem(omniglot_download.FILES, "images_evaluation.zip", hashlib.md5(big).hexdigest())
    root = small_disk.path / "omniglot"
    small_disk.leave(2)  # the first zip fits
    assert run(root, server.url) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"rl-alphamaml: error: cannot write {root / 'images_evaluation.zip'}: No space left on device; "
                       f"no part of it was kept (zips already in {root} are untouched): free space and run the command "
                       "again") and not any("Traceback" in line for line in err)
    assert sorted(p.name for p in root.iterdir()) == ["images_background.zip"]  # no .part file
    small_disk.make_room()
    server.requests.clear()
    assert run(root, server.url) == 0
    assert [r.rsplit("/", 1)[-1] for r in server.requests] == ["images_evaluation.zip"]
    assert (root / "images_evaluation.zip").read_bytes() == big
