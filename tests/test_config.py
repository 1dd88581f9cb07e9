"""Strict configs: unknown keys and wrong types are one-line errors that list the valid keys."""

from __future__ import annotations

import pytest

from xdomain.config import apply_overrides, build_config, read_recipe
from xdomain.errors import ConfigError


def base(**extra):
    return {"method": "dtn", **extra}


def test_defaults_build():
    cfg = build_config(base())
    assert cfg.train.precision == "fp32"
    assert cfg.data.image_size == 32


def test_unknown_top_level_key_lists_valid_keys():
    with pytest.raises(ConfigError) as e:
        build_config(base(trian={"steps": 1}))
    msg = str(e.value)
    assert "unknown key 'trian'" in msg and "train" in msg and "data" in msg
    assert "\n" not in msg


def test_misspelt_nested_key_names_section_and_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown key 'train\.stpes'.*under 'train'.*steps"):
        build_config(base(train={"stpes": 10}))


def test_misspelt_model_key_is_an_error():
    with pytest.raises(ConfigError, match=r"unknown key 'model\.lambda_typo'"):
        build_config(base(model={"lambda_typo": 1.0}))


@pytest.mark.parametrize(
    ("section", "key", "value", "pattern"),
    [
        ("train", "steps", "many", "'train.steps' must be int"),
        ("train", "steps", 1.5, "'train.steps' must be int"),
        ("train", "precision", "fp8", "valid values: fp32, bf16, fp16"),
        ("data", "augment", "yes", "'data.augment' must be bool"),
        ("data", "on_bad_file", "ignore", "valid values: error, skip"),
        ("train", "steps", 0, "train.steps must be > 0"),
    ],
)
def test_wrong_types_and_values(section, key, value, pattern):
    with pytest.raises(ConfigError, match=pattern):
        build_config(base(**{section: {key: value}}))


def test_int_is_accepted_for_float_and_none_for_optional():
    cfg = build_config(base(data={"n_a": None}, train={"decay_start": None}))
    assert cfg.data.n_a is None


def test_unknown_method_lists_methods():
    with pytest.raises(ConfigError, match=r"valid methods: .*discogan.*dtn"):
        build_config({"method": "cyclegan2"})


def test_overrides_parse_yaml_scalars_and_nest():
    data = apply_overrides(
        base(),
        ["train.steps=12", "data.augment=true", "eval.select=val_acc", "train.decay_start=null"],
    )
    assert data["train"] == {"steps": 12, "decay_start": None}
    assert data["data"]["augment"] is True
    cfg = build_config(data)
    assert cfg.train.steps == 12 and cfg.eval.select == "val_acc"


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(base(), ["train.steps"])


def test_recipe_file_base_inheritance(tmp_path):
    parent = tmp_path / "parent.yaml"
    parent.write_text("method: dtn\ntrain:\n  steps: 7\n  log_every: 3\n")
    child = tmp_path / "child.yaml"
    child.write_text(f"base: {parent}\ntrain:\n  steps: 9\n")
    data, _ = read_recipe(str(child))
    assert data["train"] == {"steps": 9, "log_every": 3}


def test_unknown_recipe_lists_recipes():
    with pytest.raises(ConfigError, match="unknown recipe 'nope'; built-in recipes"):
        read_recipe("nope")


def test_invalid_yaml_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: [dtn\n")
    with pytest.raises(ConfigError, match="invalid YAML") as e:
        read_recipe(str(bad))
    assert "\n" not in str(e.value)
