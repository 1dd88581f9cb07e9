"""Strict configs: unknown keys and wrong types are one-line errors that list the valid keys."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from xdomain.config import (
    apply_overrides,
    build_config,
    load_config,
    read_recipe,
    recipe_names,
    to_dict,
    to_yaml,
)
from xdomain.errors import ConfigError
from xdomain.methods import METHODS
from xdomain.schema import (
    NonNegative,
    Positive,
    SeedRange,
    StrictLoader,
    UnitInterval,
    _implied_range,
    from_dict,
)


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
        ("train", "steps", 0, r"'train\.steps' must be > 0, got 0"),
    ],
)
def test_wrong_types_and_values(section, key, value, pattern):
    with pytest.raises(ConfigError, match=pattern):
        build_config(base(**{section: {key: value}}))


def test_int_is_accepted_for_float_and_none_for_optional():
    cfg = build_config(base(model={"lr_g": 1}, data={"n_a": None}, train={"decay_start": None}))
    assert cfg.model.lr_g == 1.0 and type(cfg.model.lr_g) is float
    assert cfg.data.n_a is None and cfg.train.decay_start is None
    cfg = load_config("discogan-toy", ["model.lr=1"])
    assert cfg.model.lr == 1.0 and type(cfg.model.lr) is float


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


# --------------------------------------------------------------------------- strict YAML


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 300, msg
    return msg


def test_duplicate_yaml_key_names_file_key_and_line(tmp_path):
    # before: last one won, so `steps: 5` was silently ignored
    f = tmp_path / "dup.yaml"
    f.write_text("method: dtn\ntrain:\n  steps: 5\n  log_every: 1\n  steps: 6\n")
    with pytest.raises(ConfigError) as e:
        load_config(str(f))
    msg = _one_line(e)
    assert str(f) in msg and "duplicate key 'steps'" in msg, msg
    assert "line 5" in msg and "first set on line 3" in msg, msg


def test_duplicate_top_level_section_and_duplicate_in_override_value(tmp_path):
    f = tmp_path / "dup.yaml"
    f.write_text("method: dtn\nmodel:\n  lr_g: 0.1\nmodel:\n  lr_d: 0.1\n")
    with pytest.raises(ConfigError, match=r"line 4: duplicate key 'model'"):
        read_recipe(str(f))
    with pytest.raises(ConfigError, match=r"override .*duplicate key 'batch_size'"):
        apply_overrides(base(), ["data={batch_size: 1, batch_size: 2}"])


def test_yaml_merge_keys_are_not_duplicates():
    data = _strict_load("t: &t {steps: 5, log_every: 2}\ntrain:\n  <<: *t\n  steps: 7\n")
    assert data["train"] == {"steps": 7, "log_every": 2}


def _strict_load(text):
    return yaml.load(text, Loader=StrictLoader)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1e-4", 1e-4),
        ("2E+3", 2000.0),
        ("2e-4", 2e-4),
        (".5", 0.5),
        ("-.5", -0.5),
        ("-1.5e3", -1500.0),
        ("1.0", 1.0),
        (".inf", float("inf")),
        ("-.inf", float("-inf")),
    ],
)
def test_yaml_12_floats(text, value):
    # before: PyYAML's YAML 1.1 resolver read `1e-4` and `2e-4` as strings
    got = _strict_load(f"x: {text}")["x"]
    assert type(got) is float and got == value
    assert type(_strict_load("x: 1_000")["x"]) is int
    assert _strict_load("x: .nan")["x"] != _strict_load("x: .nan")["x"]  # NaN


def test_exponent_lr_in_override_and_recipe_is_a_float(tmp_path):
    cfg = load_config("dtn-digits", ["model.lr_g=2e-4"])
    assert cfg.model.lr_g == 2e-4
    f = tmp_path / "r.yaml"
    f.write_text("method: discogan\nmodel:\n  lr: 2e-4\n")
    assert load_config(str(f)).model.lr == 2e-4


@pytest.mark.parametrize("text", ["x: 0b_", "x: 0x_", "x: 2001-13-45", "x: " + "1" * 5000])
def test_unreadable_yaml_scalars_are_config_errors(text, tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=r"invalid YAML at line 1: cannot read") as e:
        read_recipe(str(f))
    _one_line(e)


def test_deeply_nested_yaml_is_a_config_error(tmp_path):
    f = tmp_path / "deep.yaml"
    f.write_text("x: " + "[" * 5000 + "]" * 5000)
    with pytest.raises(ConfigError, match="nested too deeply"):
        read_recipe(str(f))


# --------------------------------------------------------------------------- sections


@pytest.mark.parametrize(
    ("override", "section"),
    [("model=", "model"), ("model=0", "model"), ("data=5", "data"), ("train=null", "train")],
)
def test_scalar_for_a_section_is_an_error(override, section):
    # before: `model=` silently reset the recipe's model section to the method's defaults
    with pytest.raises(ConfigError) as e:
        load_config("dtn-digits", [override])
    msg = _one_line(e)
    assert f"'{section}' is a section; set keys under it, e.g. {section}." in msg, msg


def test_scalar_section_in_a_file_is_an_error(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("method: dtn\nmodel: 3\n")
    with pytest.raises(ConfigError, match=r"r\.yaml: 'model' is a section; .*e\.g\. model\.lr_g="):
        load_config(str(f))
    f.write_text("method: dtn\neval:\n")  # an empty section header is None, not {}
    with pytest.raises(ConfigError, match=r"'eval' is a section"):
        load_config(str(f))


def test_key_under_a_value_is_an_error_and_mapping_merges():
    with pytest.raises(ConfigError, match=r"'train\.steps' is a value \(1500\), not a section"):
        load_config("dtn-digits", ["train.steps.x=1"])
    cfg = load_config("dtn-digits", ["data={batch_size: 8}"])
    assert cfg.data.batch_size == 8 and cfg.data.a == "digits-printed"  # merged, not replaced


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ({}, "no 'method' key; valid methods"),
        ({"method": ["dtn"]}, r"'method' is \['dtn'\]; valid methods"),
        ({"method": "dtn", "model": None}, "'model' is a section"),
    ],
)
def test_method_and_model_shape(data, pattern):
    with pytest.raises(ConfigError, match=pattern):
        build_config(data)


# --------------------------------------------------------------------------- recipe resolution


def test_base_path_is_relative_to_the_recipe_that_names_it(tmp_path, monkeypatch):
    # before: `base: parent.yaml` was looked up in the working directory
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "parent.yaml").write_text("method: dtn\ntrain:\n  steps: 7\n")
    (tmp_path / "exp" / "sub").mkdir()
    (tmp_path / "exp" / "sub" / "child.yaml").write_text("base: ../parent.yaml\nseed: 3\n")
    (tmp_path / "exp" / "mid.yaml").write_text("base: sub/child.yaml\ntrain:\n  log_every: 2\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(str(tmp_path / "exp" / "mid.yaml"))
    assert (cfg.train.steps, cfg.train.log_every, cfg.seed) == (7, 2, 3)


def test_base_name_in_a_file_is_the_builtin_recipe_and_errors_name_the_file(tmp_path):
    f = tmp_path / "child.yaml"
    f.write_text("base: dtn-digits\nseed: 4\n")
    cfg = load_config(str(f))
    assert cfg.method == "dtn" and cfg.seed == 4 and cfg.eval.select == "val_acc"
    f.write_text("base: missing.yaml\n")
    with pytest.raises(ConfigError, match=r"child\.yaml: base: config file .*missing\.yaml"):
        load_config(str(f))
    f.write_text("base: [dtn-digits]\n")
    with pytest.raises(ConfigError, match=r"child\.yaml: 'base' must name a recipe"):
        load_config(str(f))
    f.write_text("base: child.yaml\n")
    with pytest.raises(ConfigError, match="chain loops"):
        load_config(str(f))


def test_local_file_or_folder_does_not_shadow_a_builtin_recipe(tmp_path, monkeypatch):
    # before: any existing path won, so a stray `dtn-digits` file was read instead
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dtn-digits").write_text("method: nonsense\n")
    (tmp_path / "dtn-digits-binary").mkdir()
    assert load_config("dtn-digits").method == "dtn"
    assert load_config("dtn-digits-binary").model.discriminator == "binary"
    (tmp_path / "mine.yml").write_text("base: dtn-digits\n")
    assert load_config("mine.yml").method == "dtn"
    with pytest.raises(ConfigError, match=r"config file 'x/y' does not exist"):
        read_recipe("x/y")


def test_unknown_recipe_lists_builtins_and_explains_paths():
    with pytest.raises(ConfigError) as e:
        read_recipe("dtn-digitz")
    msg = _one_line(e)
    assert "unknown recipe 'dtn-digitz'" in msg and "dtn-digits-no-d" in msg, msg
    assert "path ending in .yaml" in msg


@pytest.mark.parametrize("name", recipe_names())
def test_every_builtin_recipe_loads(name):
    from xdomain.methods import METHODS

    cfg = load_config(name)
    assert cfg.method in METHODS
    # a checkpoint stores `to_dict(cfg)`; the stricter checks must still accept it
    assert build_config(to_dict(cfg), "state.json") == cfg


# --------------------------------------------------------------------------- ranges


@pytest.mark.parametrize(
    ("override", "pattern"),
    [
        ("data.image_size=0", r"'data\.image_size' must be >= 8, got 0"),
        ("data.batch_size=-1", r"'data\.batch_size' must be > 0"),
        ("data.max_pixels=0", r"'data\.max_pixels' must be > 0"),
        ("data.num_workers=-1", r"'data\.num_workers' must be >= 0"),
        ("data.n_a=0", r"'data\.n_a' must be > 0"),
        ("data.seed=-1", r"'data\.seed' must be in \[0, 4294967296\)"),
        ("seed=4294967296", r"'seed' must be in \[0, 4294967296\)"),
        ("train.threads=-1", r"'train\.threads' must be >= 0"),
        ("train.keep_last=0", r"'train\.keep_last' must be >= 1"),
        ("train.decay_start=-1", r"'train\.decay_start' must be >= 0"),
        ("train.decay_start=1500", r"train\.decay_start=1500 must be < train\.steps=1500"),
        ("eval.n_test=0", r"'eval\.n_test' must be > 0"),
        ("eval.n_val=-1", r"'eval\.n_val' must be >= 0"),
        ("data.channels=2", "data.channels must be 1 or 3"),
        # method configs: the generic name rules
        ("model.width_f=0", r"'model\.width_f' must be > 0"),
        ("model.feat_dim=-3", r"'model\.feat_dim' must be > 0"),
        ("model.f_steps=0", r"'model\.f_steps' must be > 0"),
        ("model.f_batch=0", r"'model\.f_batch' must be > 0"),
        ("model.d_steps_source=0", r"'model\.d_steps_source' must be > 0"),
        ("model.f_seed=-1", r"'model\.f_seed' must be in \[0, "),
        ("model.lr_g=0", r"'model\.lr_g' must be > 0"),
        ("model.f_lr=-1e-3", r"'model\.f_lr' must be > 0"),
        ("model.beta1=1", r"'model\.beta1' must be in \[0, 1\)"),
        ("model.beta2=-0.1", r"'model\.beta2' must be in \[0, 1\)"),
        ("model.lambda_tid=-1", r"'model\.lambda_tid' must be >= 0"),
        ("model.lambda_const=.nan", r"'model\.lambda_const' must be a finite number, got nan"),
        ("model.lambda_tv=.inf", r"'model\.lambda_tv' must be a finite number, got inf"),
        ("model.lr_d=-.inf", r"'model\.lr_d' must be a finite number"),
        ("train.steps=1e4", r"'train\.steps' must be int, got 10000\.0 \(write 10000\)"),
    ],
)
def test_range_checks_are_one_line(override, pattern):
    with pytest.raises(ConfigError, match=pattern) as e:
        load_config("dtn-digits", [override])
    _one_line(e)


def test_discogan_sizes_follow_the_name_rule():
    for key in ("hidden_g", "hidden_d", "layers_g", "layers_d"):
        with pytest.raises(ConfigError, match=rf"'model\.{key}' must be > 0"):
            load_config("discogan-toy", [f"model.{key}=0"])
    assert load_config("discogan-toy", ["model.weight_decay=0"]).model.weight_decay == 0.0


@pytest.mark.parametrize("method", sorted(METHODS))
def test_method_defaults_satisfy_the_range_rules(method):
    cls = METHODS[method].Config
    from_dict(cls, dataclasses.asdict(cls()), f"{method} defaults", prefix="model.")


def test_implied_range_rule():
    assert _implied_range("width_f", int, 64) is Positive
    assert _implied_range("n_layers", int, 3) is Positive
    assert _implied_range("num_blocks", int, 6) is Positive
    assert _implied_range("num_workers", int, 0) is None  # default 0: 0 means "none"
    assert _implied_range("n_a", int | None, None) is None  # Optional: None/0 meanings vary
    assert _implied_range("f_seed", int, 0) is SeedRange
    assert _implied_range("lr", float, 2e-4) is Positive
    assert _implied_range("lambda_cyc", float, 10.0) is NonNegative
    assert _implied_range("betas", tuple[float, float], (0.5, 0.999)) is UnitInterval
    assert _implied_range("variant", str, "gan") is None


# --------------------------------------------------------------------------- eval.select


@pytest.mark.parametrize(
    ("recipe", "select", "listed"),
    [("dtn-digits", "accuracy", "val_acc, fid_judge"), ("discogan-toy", "val_acc", "mode_purity")],
)
def test_eval_select_must_be_a_metric_of_the_data(recipe, select, listed):
    # before: an unknown metric never selected a `best` checkpoint, silently
    with pytest.raises(ConfigError) as e:
        load_config(recipe, [f"eval.select={select}"])
    msg = _one_line(e)
    assert f"eval.select='{select}' is not a metric" in msg and listed in msg, msg


def test_toy_metric_names_match_eval_metrics():
    import torch

    from xdomain.metrics.toy import mode_metrics

    centers = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    got = mode_metrics(torch.randn(16, 2), torch.zeros(16, dtype=torch.long), centers, 0.1)
    from xdomain.metrics.toy import METRICS

    assert set(got) | {"d_b_fake"} == set(METRICS)


def test_eval_select_metrics_and_modes():
    assert set(METHODS["discogan"].metrics("points")) >= {
        "modes_covered",
        "mode_purity",
        "d_b_fake",
    }
    assert load_config("discogan-toy", ["eval.select=modes_covered"]).eval.select
    ok = load_config("dtn-digits", ["eval.select=fid_judge", "eval.select_mode=min"])
    assert ok.eval.select == "fid_judge"
    with pytest.raises(ConfigError, match=r"better when lower; set eval\.select_mode=min"):
        load_config("dtn-digits", ["eval.select=fid_judge"])
    assert load_config("dtn-digits", ["eval.select="]).eval.select == ""


# --------------------------------------------------------------------------- batch vs data


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        (["data.n_a=100", "data.batch_size=1000000000000"], r"domain a's training set \(100 "),
        (["data.n_b=50", "data.batch_size=51"], r"domain b's training set \(50 points\)"),
    ],
)
def test_batch_larger_than_the_training_set(overrides, pattern):
    # before: data.batch_size=10**12 hung while memory grew
    from xdomain.datamodule import build_data

    cfg = load_config("discogan-toy", overrides)
    with pytest.raises(ConfigError, match=pattern) as e:
        build_data(cfg.data)
    assert "lower data.batch_size" in _one_line(e)


def test_root_replaces_a_and_b_in_the_resolved_config():
    cfg = load_config("dtn-digits", ["data.root=/data/horse2zebra/"])
    assert (cfg.data.a, cfg.data.b) == ("/data/horse2zebra/trainA", "/data/horse2zebra/trainB")
    assert "digits-printed" not in to_yaml(cfg)


def test_renamed_model_key_of_an_older_checkpoint_still_loads():
    """DTN's tid_recolour became tid_augment: a config written before the rename resolves."""
    from xdomain.config import build_config, read_recipe, to_dict

    data, _ = read_recipe("dtn-digits")
    for old, new in ((True, "colour"), (False, "")):
        model = {k: v for k, v in data["model"].items() if k != "tid_augment"}
        cfg = build_config({**data, "model": {**model, "tid_recolour": old}})
        assert cfg.model.tid_augment == new and "tid_recolour" not in to_dict(cfg)["model"]
    # an explicit new key wins over the converted old one
    cfg = build_config({**data, "model": {**data["model"], "tid_recolour": True}})
    assert cfg.model.tid_augment == data["model"]["tid_augment"]
