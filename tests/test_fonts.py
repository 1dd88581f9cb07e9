"""`digits-printed` renders from pinned fonts only: an extra font on the system changes neither
the data set nor its fingerprint (it does change `digits-printed-system`, the explicit choice);
a missing or altered pinned font is a one-line error naming the Debian package.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from xdomain.data import fonts as fonts_mod
from xdomain.data import printed
from xdomain.errors import DataError
from xdomain.fingerprint import data_fingerprint
from xdomain.sections import DataConfig

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fresh(tmp_path, monkeypatch):
    monkeypatch.setenv("XDOMAIN_CACHE", str(tmp_path / "cache"))
    printed._FONTS.clear()
    fonts_mod.manifest_fonts.cache_clear()
    yield
    printed._FONTS.clear()
    fonts_mod.manifest_fonts.cache_clear()


def _render(font_set: str) -> printed.Rendered:
    printed._FONTS.clear()
    return printed.render(0, "test", 60, 32, progress=False, font_set=font_set)


def test_an_extra_font_changes_nothing_pinned(install_extra_font):
    before, before_sys = _render("manifest"), _render("system")
    fp_before = data_fingerprint(DataConfig())
    fp_sys_before = data_fingerprint(DataConfig(a="digits-printed-system"))
    install_extra_font()
    after, after_sys = _render("manifest"), _render("system")
    assert np.array_equal(before.images, after.images) and before.font_names == after.font_names
    assert data_fingerprint(DataConfig()) == fp_before
    # the explicit all-system-fonts source does see it, and says so in its fingerprint
    assert len(after_sys.font_names) == len(before_sys.font_names) + 1
    assert data_fingerprint(DataConfig(a="digits-printed-system")) != fp_sys_before


def _manifest_with(monkeypatch, edit) -> None:
    data = json.loads(fonts_mod.manifest_text())
    edit(data["fonts"])
    text = json.dumps(data)
    monkeypatch.setattr(fonts_mod, "manifest_text", lambda: text)
    fonts_mod.manifest_fonts.cache_clear()


def test_missing_pinned_font_names_the_package(monkeypatch):
    def remove(entries):
        entries[0]["path"] = "/nonexistent/DejaVuSans.ttf"
        entries[0]["package"] = "fonts-dejavu-core"

    _manifest_with(monkeypatch, remove)
    with pytest.raises(DataError, match="install the Debian package\\(s\\) fonts-dejavu-core"):
        fonts_mod.manifest_fonts()


def test_altered_pinned_font_is_an_error(monkeypatch):
    def alter(entries):
        entries[3]["sha256"] = "0" * 64

    _manifest_with(monkeypatch, alter)
    with pytest.raises(DataError, match=r"differs from the pinned one .* would change"):
        fonts_mod.manifest_fonts()


def test_makefile_installs_every_manifest_package():
    text = (ROOT / "Makefile").read_text()
    block = re.search(r"APT_PACKAGES :=(.*?)\n\n", text, re.S)
    assert block is not None
    makefile = set(block.group(1).replace("\\", " ").split())
    manifest = {e.package for e in fonts_mod.manifest_entries()}
    assert manifest <= makefile, manifest - makefile
    assert len(fonts_mod.manifest_entries()) >= 100  # the SVHN-like variety
