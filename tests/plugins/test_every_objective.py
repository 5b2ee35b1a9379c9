"""Every registered objective trains one step with a compatible backbone.

Parametrized over the registry, so a newly installed objective plugin is tested automatically;
the backbone is chosen by what the objective requires (token masking -> a ViT).
"""

import pytest
import yaml

from vssl_core.config import load_config
from vssl_core.engine.checkpoint import load_checkpoint
from vssl_core.engine.trainer import train
from vssl_core.plugins import load_plugins

HOST = load_plugins()
OBJECTIVES = HOST.registry.names("objective")

TINY_BACKBONES = {  # tiny settings of the built-in backbones, by capability
    "token_mask": {
        "name": "vit_tiny",
        "img_size": 32,
        "num_frames": 4,
        "patch_size": 8,
        "depth": 1,
    },
    None: {"name": "cnn3d_small", "img_size": 32, "num_frames": 4, "width": 8},
}
# arguments that must shrink for a 1-step run on a tiny batch (a queue must divide by it, etc.)
TINY_ARGS = {
    "moco": {"queue_size": 64},
    "tubelet": {"queue_size": 64},
    "sigma": {"num_prototypes": 16},
    "supervised": {"num_classes": 4, "task": "classification"},
}


def _backbone_for(objective: str) -> dict:
    needs = HOST.registry.get("objective", objective).mark.requires
    spec = TINY_BACKBONES["token_mask" if "token_mask" in needs else None]
    if spec["name"] not in HOST.registry.names("backbone"):
        pytest.skip(f"no tiny backbone {spec['name']!r} registered for {objective}")
    return dict(spec)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_objective_trains_one_step(objective, tmp_path):
    recipe = {
        "run": {"name": objective, "output_root": str(tmp_path)},
        "data": {
            "dataset": {
                "name": "moving_shapes",
                "num_samples": 16,
                "num_classes": 4,
                "num_frames": 64,
                "size": 40,
            }
        },
        "backbone": _backbone_for(objective),
        "objective": {"name": objective, **TINY_ARGS.get(objective, {})},
        "batch": {"global_size": 8},
        "optim": {"name": "adamw", "lr": 1e-3, "lr_scaling": "none"},
        "train": {"max_steps": 2},
        "log": {"every_steps": 1, "progress_bar": False, "tensorboard": False},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = train(load_config(path, [], HOST), HOST)
    assert result.status == "completed" and result.step == 2
    assert result.last_loss is not None and result.last_loss == result.last_loss  # finite
    state = load_checkpoint(result.run_dir / "checkpoints" / "last.pt")
    assert any(k.startswith("backbone.") for k in state["model"])


def test_the_registry_holds_the_built_in_objectives():
    assert {"videomae"} <= set(OBJECTIVES)


BUILT_IN = ("clip_order", "moco", "rotation", "sigma", "supervised", "tubelet", "videomae")


@pytest.mark.parametrize("objective", [o for o in BUILT_IN if o in OBJECTIVES])
def test_built_in_objectives_trace_into_one_graph(objective):
    """No graph break: ``torch.compile`` gets the whole forward (and its backward) as one graph.
    The same reads would block the host on a GPU in eager mode (tubelet's eager jitter keeps
    its one: it picks the samples that drew a jitter, 4x cheaper than jittering all)."""
    import torch

    from vssl_core.build import build_objective
    from vssl_core.data.clips import normalize_on_device
    from vssl_core.interfaces import Batch

    recipe = {"backbone": _backbone_for(objective), "objective": {"name": objective}}
    recipe["objective"].update(TINY_ARGS.get(objective, {}))
    torch.manual_seed(0)
    model = build_objective(HOST.registry, recipe).train()
    views = model.views()
    shape = (8, 3, views.frames, views.crop_size, views.crop_size)
    clips = [torch.randint(0, 256, shape, dtype=torch.uint8) for _ in range(views.num_clips)]
    ids_B = torch.arange(8)
    batch = Batch(clips=clips, label=ids_B % 4, index=ids_B, keys=ids_B)
    batch = normalize_on_device(batch, views)

    def loss_of(b):
        return model(b).loss

    torch._dynamo.reset()
    explained = torch._dynamo.explain(loss_of)(batch)
    assert explained.graph_break_count == 0, [str(r.reason)[:200] for r in explained.break_reasons]
