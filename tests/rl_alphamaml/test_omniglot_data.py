"""Omniglot data, splits, task sampler and the MAML conv net, on the real data (``OMNIGLOT_ROOT`` below).

The full set is preprocessed once per test session into a temporary cache (session fixture
``full_data``); the layout tests use small folders extracted from a few alphabets.
"""

from __future__ import annotations

import copy
import io
import json
import os
import shutil
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.func import functional_call

from rl_alphamaml.supervised import omniglot_data, omniglot_download
from rl_alphamaml.supervised.convnet import ConvNet
from rl_alphamaml.supervised.omniglot import (
    ENV_CACHE,
    ENV_ROOT,
    SETS,
    CharacterId,
    OmniglotDataError,
    OmniglotDataset,
    OmniglotSplit,
    OmniglotTaskSampler,
    load_omniglot,
    make_split,
)

# $RL_ALPHAMAML_OMNIGLOT, else the copy beside the checkout on the project's machines, else the user data folder.
_SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "omniglot"
OMNIGLOT_ROOT = Path(os.environ.get("RL_ALPHAMAML_OMNIGLOT")
                     or (_SHARED if _SHARED.is_dir() else omniglot_download.default_data_dir()))
SMALL_ALPHABETS = {"background": ["Blackfoot_(Canadian_Aboriginal_Syllabics)", "Tagalog"],
                   "evaluation": ["Angelic"]}  # 14 + 17 and 20 characters


def _require_data() -> None:
    if not all((OMNIGLOT_ROOT / f"images_{s}.zip").is_file() for s in SETS):
        pytest.skip(f"Omniglot zips not found in {OMNIGLOT_ROOT}")


def _extract(root: Path, set_name: str, prefixes: list[str]) -> None:
    """Extract the members of images_<set>.zip under the given ``Alphabet[/character]`` prefixes."""
    with zipfile.ZipFile(OMNIGLOT_ROOT / f"images_{set_name}.zip") as z:
        wanted = tuple(f"images_{set_name}/{p}/" for p in prefixes)
        z.extractall(root, [n for n in z.namelist() if n.startswith(wanted)])


@pytest.fixture(scope="session")
def full_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("omniglot_cache")


@pytest.fixture(scope="session")
def full_data(full_cache: Path) -> OmniglotDataset:
    _require_data()
    t0 = time.perf_counter()
    data = load_omniglot(OMNIGLOT_ROOT, cache_dir=full_cache)
    print(f"\nOmniglot first load (preprocess + cache write): {time.perf_counter() - t0:.2f} s")
    assert not data.from_cache
    return data


@pytest.fixture(scope="session")
def small_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder layout with three alphabets (51 characters)."""
    _require_data()
    root = tmp_path_factory.mktemp("omniglot_small")
    for set_name, alphabets in SMALL_ALPHABETS.items():
        _extract(root, set_name, alphabets)
    return root


@pytest.fixture()
def tiny_root(tmp_path: Path) -> Path:
    """Folder layout with two characters per set, fresh for each test (so it may be damaged)."""
    _require_data()
    root = tmp_path / "omniglot"
    _extract(root, "background", ["Tagalog/character01", "Tagalog/character02"])
    _extract(root, "evaluation", ["Angelic/character01", "Angelic/character02"])
    return root


# ------------------------------------------------------------------------------------- data and cache


def test_full_set_counts_and_polarity(full_data: OmniglotDataset) -> None:
    assert len(full_data) == 1623
    assert full_data.images.shape == (1623, 20, 28, 28)
    assert full_data.images.dtype == np.uint8
    assert not full_data.images.flags.writeable
    for set_name, (alphabets, characters) in {"background": (30, 964), "evaluation": (20, 659)}.items():
        assert len(full_data.indices_of_set(set_name)) == characters
        assert len(full_data.alphabets(set_name)) == alphabets
    assert full_data.num_drawers == 20
    assert len(set(full_data.keys())) == 1623
    assert full_data.characters[0] == CharacterId("background", "Alphabet_of_the_Magi", "character01")
    x = full_data.float_images(slice(0, 100))
    assert x.dtype == np.float32 and x.min() == 0.0 and x.max() == 1.0
    assert 0.02 < x.mean() < 0.2  # thin strokes: ink = 1.0 is the minority
    border = np.concatenate([x[..., 0, :], x[..., -1, :], x[..., :, 0], x[..., :, -1]], axis=-1)
    assert border.mean() < 0.02  # background = 0.0


def test_preprocessing_matches_source_png(full_data: OmniglotDataset) -> None:
    """Each 28×28 image is its 105×105 PNG, inverted and shrunk (same drawer, same orientation)."""
    with zipfile.ZipFile(OMNIGLOT_ROOT / "images_evaluation.zip") as z:
        for key, drawer in [("evaluation/Angelic/character03", 7), ("evaluation/Tengwar/character10", 19)]:
            c = CharacterId.from_key(key)
            folder = f"images_evaluation/{c.alphabet}/{c.character}/"
            name = next(n for n in z.namelist() if n.startswith(folder) and n.endswith(f"_{drawer:02d}.png"))
            ink = 1.0 - np.asarray(Image.open(io.BytesIO(z.read(name))).convert("L"), np.float32) / 255.0
            # independent reference: exact 15×15 area means of the 105×105 image vs 4×4 of ours (7×7)
            ref = ink.reshape(7, 15, 7, 15).mean(axis=(1, 3)).ravel()
            ours = full_data.float_images()[full_data.index_of(key), drawer - 1]
            coarse = ours.reshape(7, 4, 7, 4).mean(axis=(1, 3))
            assert np.corrcoef(ref, coarse.ravel())[0, 1] > 0.99
            assert np.corrcoef(ref, coarse.T.ravel())[0, 1] < 0.8  # orientation kept (not transposed)
            assert abs(ours.mean() - ink.mean()) < 0.02  # anti-aliasing keeps the ink mass


def test_cache_hit_is_fast_and_equal(
    full_data: OmniglotDataset, full_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cache hit must not decode PNGs")

    monkeypatch.setattr(omniglot_data, "_decode_png", no_decoding)
    t0 = time.perf_counter()
    again = load_omniglot(OMNIGLOT_ROOT, cache_dir=full_cache)
    elapsed = time.perf_counter() - t0
    print(f"\nOmniglot cache load: {elapsed:.2f} s")
    assert again.from_cache and again.cache_file == full_data.cache_file
    assert again.characters == full_data.characters
    np.testing.assert_array_equal(again.images, full_data.images)
    assert elapsed < 5.0
    assert [p.name for p in full_cache.iterdir()] == [full_data.cache_file.name]  # type: ignore[union-attr]


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other_key"])
def test_corrupt_cache_is_rebuilt(tiny_root: Path, tmp_path: Path, damage: str) -> None:
    cache = tmp_path / "cache"
    fresh = load_omniglot(tiny_root, cache_dir=cache, require_complete=False)
    assert fresh.cache_file is not None and fresh.cache_file.is_file() and not fresh.from_cache
    data = fresh.cache_file.read_bytes()
    if damage == "garbage":
        fresh.cache_file.write_bytes(b"not an npz file")
    elif damage == "truncated":
        fresh.cache_file.write_bytes(data[: len(data) // 2])
    else:  # a valid npz written for other sources under this name
        with np.load(fresh.cache_file) as z:
            arrays = dict(z)
        arrays["key"] = np.array("something else")
        with fresh.cache_file.open("wb") as f:
            np.savez(f, **arrays)
    with pytest.warns(UserWarning, match="rebuilding"):
        rebuilt = load_omniglot(tiny_root, cache_dir=cache, require_complete=False)
    assert not rebuilt.from_cache
    np.testing.assert_array_equal(rebuilt.images, fresh.images)
    assert load_omniglot(tiny_root, cache_dir=cache, require_complete=False).from_cache
    assert not list(cache.glob(".*.tmp"))  # no temporary files left behind


def test_cache_follows_the_source_files(tiny_root: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = load_omniglot(tiny_root, cache_dir=cache, require_complete=False)
    png = next((tiny_root / "images_background" / "Tagalog" / "character01").glob("*_01.png"))
    png.write_bytes((tiny_root / "images_background" / "Tagalog" / "character02").glob("*_01.png")
                    .__next__().read_bytes())
    second = load_omniglot(tiny_root, cache_dir=cache, require_complete=False)
    assert not second.from_cache and second.cache_file != first.cache_file
    assert not np.array_equal(second.images, first.images)
    assert load_omniglot(tiny_root, use_cache=False, cache_dir=tmp_path / "unused",
                         require_complete=False).cache_file is None
    assert not (tmp_path / "unused").exists()


def test_folder_layout_equals_zip(small_root: Path, full_data: OmniglotDataset, tmp_path: Path) -> None:
    small = load_omniglot(small_root, cache_dir=tmp_path, require_complete=False)
    assert len(small) == 14 + 17 + 20
    assert small.alphabets() == sorted(a for v in SMALL_ALPHABETS.values() for a in v)
    np.testing.assert_array_equal(small.images, full_data.images[full_data.indices(small.characters)])


def test_folder_and_zip_mixed(tiny_root: Path, tmp_path: Path) -> None:
    """Background as a folder, evaluation as a zip built from the extracted folder."""
    folder = tiny_root / "images_evaluation"
    with zipfile.ZipFile(tiny_root / "images_evaluation.zip", "w") as z:
        for p in sorted(folder.rglob("*")):
            z.write(p, p.relative_to(tiny_root).as_posix())
    as_folder = load_omniglot(tiny_root, use_cache=False, require_complete=False)
    shutil.rmtree(folder)
    mixed = load_omniglot(tiny_root, cache_dir=tmp_path, require_complete=False)
    assert [c.set_name for c in mixed.characters] == ["background"] * 2 + ["evaluation"] * 2
    np.testing.assert_array_equal(mixed.images, as_folder.images)


def test_subset_needs_require_complete_false(small_root: Path, tmp_path: Path) -> None:
    with pytest.raises(OmniglotDataError, match=r"(?s)2 alphabets and 31 characters, expected 30 and 964.*"
                       r"require_complete=False"):
        load_omniglot(small_root, cache_dir=tmp_path)


def test_root_from_environment(tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_ROOT, str(tiny_root))
    monkeypatch.setenv(ENV_CACHE, str(tmp_path / "cache_root"))
    data = load_omniglot(require_complete=False)
    assert data.root == tiny_root.absolute()
    assert data.cache_file is not None and data.cache_file.parent == tmp_path / "cache_root" / "omniglot"


def test_no_root_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_ROOT, raising=False)
    with pytest.raises(OmniglotDataError, match=f"data.root.*{ENV_ROOT}"):
        load_omniglot()


def _damage(root: Path, how: str) -> Path:
    bg = root / "images_background"
    char = bg / "Tagalog" / "character01"
    png = sorted(char.glob("*.png"))[3]
    if how == "missing_root":
        return root / "does_not_exist"
    if how == "root_is_a_file":
        (root.parent / "images_background.zip").write_bytes(b"")
        return root.parent / "images_background.zip"
    if how == "missing_set":
        shutil.rmtree(root / "images_evaluation")
    elif how == "missing_image":
        png.unlink()
    elif how == "corrupt_png":
        png.write_bytes(b"\x89PNG\r\n\x1a\n but then nothing useful")
    elif how == "wrong_size":
        Image.new("1", (50, 50), 1).save(png)
    elif how == "bad_name":
        png.rename(char / "drawing.png")
    elif how == "empty_alphabet":
        (bg / "Klingon").mkdir()
    elif how == "bad_zip":
        shutil.rmtree(root / "images_evaluation")
        (root / "images_evaluation.zip").write_bytes(b"PK\x03\x04 truncated")
    elif how == "folder_shadows_zip":  # an empty folder next to the zip: the folder is read, and said so
        shutil.rmtree(root / "images_evaluation")
        (root / "images_evaluation").mkdir()
        (root / "images_evaluation.zip").write_bytes(b"")
    elif how == "doubly_nested":
        tmp = root / "tmp"
        bg.rename(tmp)
        bg.mkdir()
        tmp.rename(bg / "images_background")
    else:
        raise AssertionError(how)
    return root


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("missing_root", "does not exist"),
        ("root_is_a_file", "not a folder"),
        ("missing_set", "neither images_evaluation/ nor images_evaluation.zip"),
        ("missing_image", r"Tagalog/character01 should hold drawers 01..20 \(19 images\)"),
        ("corrupt_png", "cannot decode Tagalog/character01/"),
        ("wrong_size", "is 50x50, expected 105x105"),
        ("bad_name", "not NNNN_DD.png: Tagalog/character01/drawing.png"),
        ("empty_alphabet", "alphabet Klingon has no character folders"),
        ("bad_zip", "not a readable zip file"),
        ("doubly_nested", "doubly nested"),
        ("folder_shadows_zip", "(?s)no alphabet folders.*read instead of images_evaluation.zip"),
    ],
)
def test_bad_data_fails_with_one_clear_error(tiny_root: Path, tmp_path: Path, how: str, message: str) -> None:
    root = _damage(tiny_root, how)
    with pytest.raises(OmniglotDataError, match=message) as info:
        load_omniglot(root, cache_dir=tmp_path / "cache", require_complete=False)
    text = str(info.value)
    assert isinstance(info.value, ValueError)
    assert str(root) in text or str(tiny_root) in text  # names the path
    assert "Expected Omniglot layout" in text and "images_<set>/<Alphabet>/<characterNN>" in text


# ------------------------------------------------------------------------------------------- splits


def test_vinyals_split(full_data: OmniglotDataset) -> None:
    split = make_split(full_data, "vinyals", seed=3)
    parts = {p: set(split.part(p)) for p in ("train", "val", "test")}
    assert [len(parts[p]) for p in ("train", "val", "test")] == [1100, 100, 423]
    assert not (parts["train"] & parts["val"] or parts["train"] & parts["test"] or parts["val"] & parts["test"])
    assert parts["train"] | parts["val"] | parts["test"] == set(full_data.keys())
    assert split.rotations == (0, 90, 180, 270)
    assert [split.num_classes(p) for p in ("train", "val", "test")] == [4400, 400, 1692]
    full_train = make_split(full_data, "vinyals", seed=3, num_val=0)
    assert (full_train.num_classes("train"), full_train.num_classes("test")) == (4800, 1692)
    assert full_train.train == split.train + split.val  # validation = the last 100 of the 1200
    assert full_train.test == split.test
    # seeded, and independent of the order the characters are given in
    assert make_split(list(reversed(full_data.keys())), "vinyals", seed=3) == split
    assert make_split(full_data, "vinyals", seed=4) != split
    # both sets are represented in the pooled shuffle
    assert {CharacterId.from_key(k).set_name for k in split.test} == {"background", "evaluation"}


def test_lake_split(full_data: OmniglotDataset) -> None:
    split = make_split(full_data, "lake", seed=0, num_val=50)
    assert set(split.train) | set(split.val) == {c.key for c in full_data.characters if c.set_name == "background"}
    assert set(split.test) == {c.key for c in full_data.characters if c.set_name == "evaluation"}
    assert (len(split.train), len(split.val), len(split.test)) == (914, 50, 659)
    train_alphabets = {CharacterId.from_key(k).alphabet for k in split.train}
    assert train_alphabets.isdisjoint(CharacterId.from_key(k).alphabet for k in split.test)
    assert split.rotations == (0,)
    with pytest.raises(ValueError, match="num_train"):
        make_split(full_data, "lake", num_train=1000)


def test_split_json_round_trip(full_data: OmniglotDataset, tmp_path: Path) -> None:
    split = make_split(full_data, "vinyals", seed=11)
    path = split.save(tmp_path / "run" / "omniglot_split.json")
    stored = json.loads(path.read_text())
    assert stored["train"][:2] == list(split.train[:2]) and stored["protocol"] == "vinyals"
    assert OmniglotSplit.load(path) == split
    assert OmniglotSplit.from_json(split.to_json()) == split
    path.write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match=r"omniglot_split\.json"):
        OmniglotSplit.load(path)
    with pytest.raises(ValueError, match="in both"):
        OmniglotSplit("x", None, (0,), split.train[:2], split.train[1:3], ())
    with pytest.raises(ValueError, match="rotations"):
        OmniglotSplit("x", None, (45,), split.train[:2], (), ())


def test_split_from_other_data_is_rejected(full_data: OmniglotDataset, small_root: Path, tmp_path: Path) -> None:
    small = load_omniglot(small_root, cache_dir=tmp_path, require_complete=False)
    with pytest.raises(OmniglotDataError, match="not in the data"):
        OmniglotTaskSampler(small, make_split(full_data), "train", n_way=5, k_shot=1, q_query=1)


# ---------------------------------------------------------------------------------------- sampling


@pytest.fixture(scope="module")
def vinyals_split(full_data: OmniglotDataset) -> OmniglotSplit:
    return make_split(full_data, "vinyals", seed=0)


def test_rotations_stay_in_their_part(full_data: OmniglotDataset, vinyals_split: OmniglotSplit) -> None:
    rows = {}
    for part in ("train", "val", "test"):
        s = OmniglotTaskSampler(full_data, vinyals_split, part, n_way=5, k_shot=1, q_query=1)
        assert s.num_classes == vinyals_split.num_classes(part)
        per_char = {r: sorted(s.class_rotations[s.class_rows == r].tolist()) for r in np.unique(s.class_rows)}
        assert all(v == [0, 90, 180, 270] for v in per_char.values())
        rows[part] = set(per_char)
    assert not (rows["train"] & rows["val"] or rows["train"] & rows["test"] or rows["val"] & rows["test"])


def test_rotation_classes_are_rotated_base_images(full_data: OmniglotDataset, vinyals_split: OmniglotSplit) -> None:
    s = OmniglotTaskSampler(full_data, vinyals_split, "test", n_way=5, k_shot=1, q_query=1)
    for c in [0, 1, 2, 3, 401, 1691]:
        base = full_data.images[s.class_rows[c]]  # (20, 28, 28)
        rot = int(s.class_rotations[c])
        img = s.images[c]
        if rot == 0:
            np.testing.assert_array_equal(img, base)
        elif rot == 180:
            np.testing.assert_array_equal(img, base[:, ::-1, ::-1])
        elif rot == 90:  # counter-clockwise: the top row becomes the left column, read bottom-up
            np.testing.assert_array_equal(img[:, ::-1, 0], base[:, 0, :])
        else:  # 270 ccw = 90 clockwise: the top row becomes the right column, read top-down
            np.testing.assert_array_equal(img[:, :, -1], base[:, 0, :])
        assert rot == 0 or not np.array_equal(img, base)
    assert s.class_character(1) == s.class_character(3) != s.class_character(4)


@pytest.mark.parametrize(("n", "k", "q"), [(5, 1, 15), (20, 5, 15), (3, 2, 3)])
def test_task_labels_are_correct(full_data: OmniglotDataset, vinyals_split: OmniglotSplit,
                                 n: int, k: int, q: int) -> None:
    s = OmniglotTaskSampler(full_data, vinyals_split, "train", n_way=n, k_shot=k, q_query=q)
    T = 4
    b = s.sample_batch(T, np.random.default_rng(1))
    assert b.batched and len(b) == T
    assert b.support_x.shape == (T, n * k, 1, 28, 28) and b.query_x.shape == (T, n * q, 1, 28, 28)
    assert b.support_y.shape == (T, n * k) and b.query_y.shape == (T, n * q)
    assert b.support_x.dtype == torch.float32 and b.support_y.dtype == torch.int64
    assert float(b.support_x.min()) >= 0.0 and float(b.support_x.max()) <= 1.0
    for t in range(T):
        classes = b.classes[t]
        assert len(set(classes.tolist())) == n  # distinct classes
        all_images = s.images[classes].astype(np.float32) / 255.0  # (n, 20, 28, 28)
        for xs, ys, count in ((b.support_x[t], b.support_y[t], k), (b.query_x[t], b.query_y[t], q)):
            assert torch.bincount(ys, minlength=n).tolist() == [count] * n
            for x, y in zip(xs[:, 0].numpy(), ys.tolist(), strict=True):
                matches = np.flatnonzero((np.abs(all_images - x) < 1e-7).all(axis=(-2, -1)).any(axis=1))
                assert y in matches  # the image is a drawing of the class behind its label
        # support and query use different drawings of each class
        assert all(len(set(d.tolist())) == k + q for d in b.drawers[t])
    one = b.task(2)
    assert one.support_x.shape == (n * k, 1, 28, 28) and one.query_y.shape == (n * q,)


def test_sampling_is_seeded(full_data: OmniglotDataset, vinyals_split: OmniglotSplit) -> None:
    a = OmniglotTaskSampler(full_data, vinyals_split, "val", n_way=5, k_shot=1, q_query=5)
    b = OmniglotTaskSampler(full_data, vinyals_split, "val", n_way=5, k_shot=1, q_query=5)
    x, y = a.sample_batch(8, np.random.default_rng(7)), b.sample_batch(8, np.random.default_rng(7))
    for name in ("support_x", "support_y", "query_x", "query_y"):
        assert torch.equal(getattr(x, name), getattr(y, name))
    np.testing.assert_array_equal(x.classes, y.classes)
    z = a.sample_batch(8, np.random.default_rng(8))
    assert not np.array_equal(x.classes, z.classes)
    single = a.sample(np.random.default_rng(7))
    assert torch.equal(single.query_x, a.sample_batch(1, np.random.default_rng(7)).task(0).query_x)
    assert torch.equal(a.sample(5).support_x, a.sample(np.random.default_rng(5)).support_x)
    # labels are assigned to classes in a fresh random order per task
    assert len({tuple(c) for c in a.sample_batch(32, np.random.default_rng(0)).classes}) == 32


def test_sampler_options_and_errors(full_data: OmniglotDataset, vinyals_split: OmniglotSplit) -> None:
    s64 = OmniglotTaskSampler(full_data, vinyals_split, "test", n_way=2, k_shot=1, q_query=1, dtype=torch.float64)
    t = s64.sample(0)
    assert t.support_x.dtype == torch.float64 and not t.batched
    with pytest.raises(ValueError, match="exceeds the 20"):
        OmniglotTaskSampler(full_data, vinyals_split, "train", n_way=5, k_shot=6, q_query=15)
    with pytest.raises(ValueError, match="n_way"):
        OmniglotTaskSampler(full_data, vinyals_split, "val", n_way=401, k_shot=1, q_query=1)
    with pytest.raises(ValueError, match="no 'val' characters"):
        OmniglotTaskSampler(full_data, make_split(full_data, num_val=0), "val", n_way=5, k_shot=1, q_query=1)


# ------------------------------------------------------------------------------------------- network


@pytest.fixture()
def one_thread() -> Iterator[None]:
    """Small convolutions run faster on one thread than on two busy shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in [*net.named_parameters(), *net.named_buffers()]}


@pytest.mark.parametrize("downsample", ["stride", "maxpool"])
@pytest.mark.parametrize("track_running_stats", [False, True])
@pytest.mark.usefixtures("one_thread")
def test_convnet_functional_call(downsample: str, track_running_stats: bool) -> None:
    torch.manual_seed(0)
    net = ConvNet(5, downsample=downsample, track_running_stats=track_running_stats)  # type: ignore[arg-type]
    assert sum(p.numel() for p in net.parameters()) == 4 * 64 * 2 + 640 + 3 * 36928 + 64 * 5 + 5
    assert len(list(net.buffers())) == (12 if track_running_stats else 0)
    x = torch.rand(25, 1, 28, 28)
    before = _state(net)
    params = {k: v.detach().clone().requires_grad_() for k, v in net.named_parameters()}
    buffers = {k: v.clone() for k, v in net.named_buffers()}
    out = functional_call(net, {**params, **buffers}, (x,))
    assert out.shape == (25, 5)
    after = _state(net)
    assert all(torch.equal(before[k], after[k]) for k in before)  # module untouched
    if track_running_stats:
        assert not torch.equal(buffers["blocks.0.norm.running_mean"], before["blocks.0.norm.running_mean"])
    reference = copy.deepcopy(net)(x)  # train mode: batch statistics, as functional_call used
    torch.testing.assert_close(out, reference, rtol=0, atol=0)
    # second-order MAML step through functional_call reaches every parameter
    loss = torch.nn.functional.cross_entropy(out, torch.arange(25) % 5)
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
    fast = {k: p - 0.4 * g for (k, p), g in zip(params.items(), grads, strict=True)}
    meta = torch.nn.functional.cross_entropy(functional_call(net, {**fast, **buffers}, (x,)),
                                             torch.arange(25) % 5)
    meta_grads = torch.autograd.grad(meta, list(params.values()))
    assert all(g is not None and torch.isfinite(g).all() for g in meta_grads)


@pytest.mark.usefixtures("one_thread")
def test_convnet_uses_batch_statistics_by_default() -> None:
    torch.manual_seed(0)
    net = ConvNet(20)
    x = torch.rand(10, 1, 28, 28)
    train_out = net(x)
    net.eval()
    torch.testing.assert_close(net(x), train_out, rtol=0, atol=0)
    assert ConvNet.output_size(28) == 2 and ConvNet.output_size(28, downsample="maxpool") == 1
    assert net.head.weight.std().item() > 0.5  # MAML init: head weights from N(0, 1)
