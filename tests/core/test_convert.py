"""The checkpoint-conversion framework: strict key accounting, format lookup and detection,
safe reading, the vssl format on real objectives, and `vssl convert`."""

import argparse

import pytest
import torch
from torch import nn

from vssl_core.build import build, build_objective
from vssl_core.cli.main import main
from vssl_core.convert import (
    CheckpointFormat,
    ConversionError,
    SourceState,
    check_fits,
    checkpoint_formats,
    convert,
    convert_checkpoint,
    detect_format,
    load_backbone_checkpoint,
    read_checkpoint,
    rename,
    run_format,
    summarize_keys,
)
from vssl_core.engine.checkpoint import load_checkpoint
from vssl_core.plugins import load_plugins


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 1)
        self.norm = nn.BatchNorm3d(4)


def _renaming(src: SourceState, backbone_name):
    return rename(src, [(r"c\.(weight|bias)", r"conv.\1"), (r"n\.(.*)", r"norm.\1")])


RENAMING = CheckpointFormat(
    name="renaming",
    summary="c -> conv, n -> norm",
    convert=_renaming,
    drops=((r"head\..*", "the classifier"),),
    detect=lambda keys: "c.weight" in keys,
)


def foreign_state(module: nn.Module) -> dict[str, torch.Tensor]:
    names = {"conv": "c", "norm": "n"}
    return {names[k.split(".")[0]] + k[k.index(".") :]: v for k, v in module.state_dict().items()}


def test_every_key_is_used_or_dropped_with_its_reason():
    src = {**foreign_state(Tiny()), "head.weight": torch.zeros(2, 4)}
    conversion = run_format(RENAMING, src)
    assert set(conversion.state) == set(Tiny().state_dict())
    assert conversion.dropped == {"head.weight": "the classifier"}
    assert "dropped 1 source keys" in conversion.describe()


def test_a_key_the_format_does_not_place_is_an_error_naming_it_and_its_closest_used_key():
    src = {**foreign_state(Tiny()), "cc.weight": torch.zeros(1)}
    with pytest.raises(ConversionError, match=r"no place for 1 of its keys") as err:
        run_format(RENAMING, src)
    assert "cc.weight (closest: c.weight)" in str(err.value)


def test_two_source_keys_renamed_to_one_name_are_an_error():
    rules = [(r"c\.(.*)", r"conv.\1"), (r"[nm]\.(.*)", r"norm.\1")]
    fmt = CheckpointFormat("dup", "two layouts", lambda s, b: rename(s, rules))
    src = foreign_state(Tiny())
    assert set(run_format(fmt, src).state) == set(Tiny().state_dict())
    with pytest.raises(
        ConversionError, match="both 'n.weight' and 'm.weight' map to 'norm.weight'"
    ):
        run_format(fmt, {**src, "m.weight": torch.ones(4)})


def test_missing_unexpected_and_misshaped_keys_are_all_listed_with_closest_names():
    src = foreign_state(Tiny())
    del src["n.running_var"]
    src["n.bias"] = torch.zeros(7)
    src["c.weights"] = torch.zeros(1)
    fmt = CheckpointFormat(
        "loose", "renames anything", lambda s, b: {k.replace("c.", "conv.", 1): s[k] for k in s}
    )
    conversion = run_format(fmt, {k.replace("n.", "norm.", 1): v for k, v in src.items()})
    with pytest.raises(ConversionError) as err:
        check_fits(conversion.state, Tiny(), conversion)
    text = str(err.value)
    assert (
        "1 backbone keys are not in the checkpoint:\n    norm.running_var (closest: norm.running_mean)"
        in text
    )
    assert "conv.weights (closest: conv.weight)" in text
    assert "norm.bias: checkpoint [7], backbone [4]" in text


def test_load_is_strict_and_fills_every_tensor():
    source, target = Tiny(), Tiny()
    for p in source.parameters():
        nn.init.normal_(p)
    report = load_backbone_checkpoint(target, foreign_state(source), fmt=RENAMING)
    assert report.format == "renaming" and len(report.loaded) == len(source.state_dict())
    for k, v in source.state_dict().items():
        assert torch.equal(target.state_dict()[k], v), k


def test_nothing_is_loaded_when_a_key_is_missing():
    target = Tiny()
    before = {k: v.clone() for k, v in target.state_dict().items()}
    src = foreign_state(Tiny())
    src["c.weight"] = src["c.weight"] + 1
    del src["c.bias"]
    with pytest.raises(ConversionError, match="conv.bias"):
        load_backbone_checkpoint(target, src, fmt=RENAMING)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())


def test_detection_picks_the_one_claiming_format_and_refuses_ambiguity():
    keys = set(foreign_state(Tiny()))
    assert detect_format(keys, {"renaming": RENAMING}).name == "renaming"
    twin = CheckpointFormat("twin", "same keys", _renaming, detect=lambda k: "c.weight" in k)
    with pytest.raises(ConversionError, match=r"several checkpoint formats \(renaming, twin\)"):
        detect_format(keys, {"renaming": RENAMING, "twin": twin})
    with pytest.raises(ConversionError, match="no checkpoint format recognizes"):
        detect_format({"x.weight"}, {"renaming": RENAMING})


def test_unknown_format_names_suggest_the_closest(host):
    with pytest.raises(ConversionError, match="did you mean videomae"):
        convert_checkpoint("videomea", {"a": torch.zeros(1)}, host=host)


def test_plugins_contribute_formats_and_a_clash_is_an_error(host):
    formats = checkpoint_formats(host)
    assert {"vssl", "videomae", "videomae_hf", "sigma", "torchvision", "pyvrl"} <= set(formats)

    class Clash:
        @staticmethod
        def vssl_checkpoint_formats():
            return [CheckpointFormat("sigma", "again", _renaming)]

    from vssl_core import hookimpl

    Clash.vssl_checkpoint_formats = hookimpl(Clash.vssl_checkpoint_formats)
    with pytest.raises(ConversionError, match="'sigma' of plugin 'clash' clashes with .*'sigma'"):
        checkpoint_formats(load_plugins(extra=[("clash", Clash)]))


def test_a_format_can_target_named_backbones_only():
    fmt = CheckpointFormat("only", "for r3d", _renaming, backbones=("r3d_18",))
    with pytest.raises(ConversionError, match="converts to the backbones r3d_18, not 'vit_base'"):
        run_format(fmt, foreign_state(Tiny()), backbone_name="vit_base")


def test_reading_allows_plain_argparse_args_but_never_code(tmp_path):
    ok = tmp_path / "official.pth"
    torch.save({"model": {"w": torch.ones(1)}, "args": argparse.Namespace(lr=1.0), "epoch": 3}, ok)
    assert torch.equal(read_checkpoint(ok)["model"]["w"], torch.ones(1))
    bad = tmp_path / "code.pth"
    torch.save({"model": {"w": torch.ones(1)}, "obj": Tiny()}, bad)
    with pytest.raises(ConversionError, match=r"safely: .*\(test_convert.Tiny\).*re-save"):
        read_checkpoint(bad)
    with pytest.raises(ConversionError, match="does not exist"):
        read_checkpoint(tmp_path / "nope.pth")


def test_a_file_without_a_state_dict_names_its_top_level_keys(host):
    with pytest.raises(ConversionError, match=r"no state dict found.*'epoch', 'optimizer'"):
        convert("vssl", {"epoch": 3, "optimizer": {"lr": 1}}, host=host)


def test_summarize_keys_groups_by_first_component():
    keys = ["decoder.a", "decoder.b", "mask_token"]
    assert summarize_keys(keys) == "decoder.* (2), mask_token"


# ---------------------------------------------------------------------------------------------
# the vssl format on the state dicts of real objectives

TINY_VIT = {"name": "vit_tiny", "img_size": 32, "num_frames": 4, "patch_size": 16, "depth": 1}
TINY_CNN = {"name": "cnn3d_small", "img_size": 32, "num_frames": 4, "width": 4}
OBJECTIVES = {
    "videomae": (TINY_VIT, {"name": "videomae", "decoder_depth": 1}, {"decoder", "mask_token"}),
    "moco": (TINY_CNN, {"name": "moco", "dim": 8, "queue_size": 16}, {"key_backbone", "queue"}),
    "tubelet": (TINY_CNN, {"name": "tubelet", "dim": 8, "queue_size": 16}, {"key_encoder"}),
}


@pytest.mark.parametrize("objective", list(OBJECTIVES))
def test_a_vssl_training_checkpoint_gives_its_query_backbone(objective, host, tmp_path):
    bb, obj, dropped_modules = OBJECTIVES[objective]
    torch.manual_seed(0)
    model = build_objective(host.registry, {"backbone": bb, "objective": obj})
    path = tmp_path / "last.pt"
    torch.save({"format": "vssl", "model": model.state_dict(), "step": 2}, path)
    fresh = build(host.registry, "backbone", bb)
    report = load_backbone_checkpoint(fresh, path, host=host)
    assert report.format == "vssl"
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k
    assert dropped_modules <= {k.split(".")[0] for k in report.dropped}
    assert not any(k.startswith("backbone.") for k in report.dropped)


def test_a_bare_backbone_state_dict_loads_as_is(host):
    source = build(host.registry, "backbone", TINY_CNN)
    target = build(host.registry, "backbone", TINY_CNN)
    assert load_backbone_checkpoint(target, source.state_dict(), host=host).format == "vssl"
    assert all(torch.equal(target.state_dict()[k], v) for k, v in source.state_dict().items())


# ---------------------------------------------------------------------------------------------
# the command line


def test_convert_cli_writes_a_vssl_checkpoint_and_says_what_it_dropped(host, tmp_path, capsys):
    torch.manual_seed(0)
    model = build_objective(
        host.registry, {"backbone": TINY_VIT, "objective": OBJECTIVES["videomae"][1]}
    )
    src = tmp_path / "official.pth"
    official = {
        k.replace("backbone.", "encoder.", 1): v for k, v in model.state_dict().items()
    }  # our objective's names are the official VideoMAE names with `encoder.` for `backbone.`
    torch.save({"model": official, "args": argparse.Namespace(epochs=800)}, src)
    out = tmp_path / "converted.pt"
    spec = "{name: vit_tiny, img_size: 32, num_frames: 4, patch_size: 16, depth: 1}"
    assert main(["convert", str(src), str(out), "--backbone", spec]) == 0
    text = capsys.readouterr().out
    assert "format videomae (detected)" in text
    assert "decoder.* (" in text and "the pretraining decoder" in text
    assert "fits backbone vit_tiny exactly" in text
    assert (
        load_checkpoint(out)["recipe"]["backbone"]["name"] == "vit_tiny"
    )  # the trainer's loader reads it
    fresh = build(host.registry, "backbone", TINY_VIT)
    report = load_backbone_checkpoint(fresh, out, fmt="vssl", host=host)
    assert report.dropped == {}
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k


def test_convert_cli_checks_the_backbone_and_lists_formats(host, tmp_path, capsys):
    src = tmp_path / "bare.pt"
    torch.save(build(host.registry, "backbone", TINY_CNN).state_dict(), src)
    code = main(
        ["convert", "--from", "vssl", str(src), str(tmp_path / "o.pt"), "--backbone", "cnn3d_small"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "tensors have another shape" in err and "stages.0.0.weight" in err
    assert not (tmp_path / "o.pt").exists()
    assert main(["convert", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "pyvrl" in listing and "drops queue(_ptr)?: the queue of negative keys" in listing
    assert main(["convert", str(src)]) == 2
    assert "needs IN and OUT" in capsys.readouterr().err
