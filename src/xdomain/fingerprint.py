"""What a run's data is built from, as a short hash: recorded with every checkpoint and metrics
log, and compared by `evaluate` and `translate` against what this machine would load now.

It is computed from the sources' definitions, without decoding anything, so it costs
milliseconds: an embedded source is its name, its version and what it is built from (the pinned
font manifest's hash for `digits-printed`, every system font for `digits-printed-system`, the
bytes of scikit-learn's bundled digits file for `digits-handwritten`, the bytes of the four IDX
files for `fashion[:<classes>]`, hashed once per file version); a folder is the list of its
image files with their sizes and modification times; a toy mixture is its spec. The data config
fields that change what is loaded (seed, size, channels, caps) are part of it too.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from xdomain.sections import DataConfig


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _folder(path: Path) -> str:
    from xdomain.data.images import IMAGE_EXTENSIONS

    entries = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for name in sorted(filenames):
            if Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                p = Path(dirpath, name)
                st = p.stat()
                entries.append([str(p.relative_to(path)), st.st_size, st.st_mtime_ns])
    return f"folder {len(entries)} files {_digest(entries)}"


def _sklearn_digits() -> str:
    import importlib.util

    from xdomain.io import sha256_file

    spec = importlib.util.find_spec("sklearn")  # located, not imported: sklearn imports slowly
    origin = Path(spec.origin).parent if spec and spec.origin else Path("/nonexistent")
    path = origin / "datasets" / "data" / "digits.csv.gz"
    return f"sklearn digits.csv.gz {sha256_file(path)[:16]}" if path.is_file() else "sklearn ?"


@functools.lru_cache(maxsize=64)
def _file_sha16(path: str, size: int, mtime_ns: int) -> str:
    """First 16 hex of a file's sha256; size and mtime are in the key so an edit is re-hashed
    while repeated fingerprints (every checkpoint, every evaluate) skip re-reading 30 MB."""
    from xdomain.io import sha256_file

    return sha256_file(path)[:16]


def _fashion(spec: str) -> str:
    """The canonical spec plus a digest of the four IDX files (name and content hash of each)."""
    from xdomain.data import fashion
    from xdomain.errors import DataError

    try:  # canonical: `fashion:Sneaker,ankle-boot` and `fashion:ankle_boot,sneaker` are one source
        ids = fashion.parse_fashion_spec(spec)
        names = [fashion.FASHION_CLASSES[i] for i in ids]
        label = (
            "fashion" if len(ids) == len(fashion.FASHION_CLASSES) else "fashion:" + ",".join(names)
        )
    except DataError:
        label = spec  # loading will report it; the fingerprint only has to differ
    folder = fashion.fashion_dir()
    files = []
    for stem in (stem for pair in fashion.FILES.values() for stem in pair):
        path = fashion.find_file(folder, stem)
        if path is None:
            files.append([stem, "missing"])
        else:
            st = path.stat()
            files.append([path.name, _file_sha16(str(path), st.st_size, st.st_mtime_ns)])
    return f"{label} fashion-mnist {_digest(files)}"


def source_fingerprint(spec: str) -> str:
    """One source (embedded name, fashion spec, toy spec or folder) -> a short description of
    its content."""
    from xdomain.data.fashion import is_fashion_spec
    from xdomain.data.printed import RENDER_VERSION, fonts_id

    if spec == "digits-printed":
        return f"digits-printed v{RENDER_VERSION} {fonts_id('manifest')}"
    if spec == "digits-printed-system":
        return f"digits-printed-system v{RENDER_VERSION} {fonts_id('system')}"
    if spec == "digits-handwritten":
        return f"digits-handwritten {_sklearn_digits()}"
    if spec == "digits-styled" or spec.startswith("digits-styled:"):
        return f"{spec} v{RENDER_VERSION} {fonts_id('manifest')}"
    for prefix in ("celeba:", "folders:"):  # labelled folders: their files say what they hold
        if spec.startswith(prefix):
            return f"{prefix}{source_fingerprint(spec[len(prefix) :])}"
    if is_fashion_spec(spec):
        return _fashion(spec)
    if spec.startswith("toy-gmm"):
        return spec
    if spec == "glyphs2digits":
        return f"glyphs2digits v{RENDER_VERSION} {fonts_id('manifest')}"
    if spec == "edges2fashion" or spec.startswith("edges2fashion:"):
        from xdomain.data.paired import EDGES_VERSION

        classes = spec.split(":", 1)[1] if ":" in spec else ""
        return f"{spec} v{EDGES_VERSION} {_fashion('fashion:' + classes if classes else 'fashion')}"
    path = Path(spec).expanduser()
    return _folder(path) if path.is_dir() else f"missing {spec}"


def data_fingerprint(cfg: DataConfig) -> dict[str, Any]:
    """{'id': 16 hex digits, 'sources': {role: description}} for a run's data config."""
    if cfg.sources:  # labelled data sets (StarGAN): one role per data set
        roles = {f"source{k}": spec for k, spec in enumerate(cfg.sources)}
    elif cfg.paired:
        roles = {"paired": cfg.paired}
    elif cfg.root:
        root = Path(cfg.root).expanduser()
        roles = {name: str(root / name) for name in ("trainA", "trainB", "testA", "testB")}
    else:
        roles = {"a": cfg.a, "b": cfg.b}
    sources = {role: source_fingerprint(spec) for role, spec in roles.items()}
    params = {
        k: getattr(cfg, k) for k in ("image_size", "channels", "seed", "n_a", "n_b", "augment")
    }
    if cfg.holdout_fonts:  # only when set: fingerprints of runs without it stay as they were
        params["holdout_fonts"] = cfg.holdout_fonts
    if cfg.paired:
        params["direction"] = cfg.direction
    if cfg.sources:
        params["celeba_attrs"] = cfg.celeba_attrs
        params["center_crop"] = cfg.center_crop
    return {"id": _digest([sources, params]), "sources": sources}


def compare(trained: Any, now: dict[str, Any]) -> str | None:
    """None when the data match; else one line saying what changed."""
    if not isinstance(trained, dict) or "id" not in trained:
        return "the checkpoint records no data fingerprint (written by an older xdomain)"
    if trained["id"] == now["id"]:
        return None
    old = trained.get("sources", {}) if isinstance(trained.get("sources"), dict) else {}
    changed = [r for r in now["sources"] if old.get(r) != now["sources"][r]]
    if changed:
        r = changed[0]
        return (
            f"the data differ from those the checkpoint was trained on: {r} was"
            f" '{str(old.get(r))[:80]}', is now '{now['sources'][r][:80]}'"
        )
    return (
        f"the data differ from those the checkpoint was trained on ({trained['id']} vs {now['id']})"
    )
