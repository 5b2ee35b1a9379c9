"""The ``knn`` protocol: weighted k-nearest-neighbour classification on frozen, L2-normalised
features. Every training and test video is embedded as the renormalised mean of its views'
unit backbone features (the test views of the recipe, for both sets); no training.

For a test feature q and training features f_i (all unit length) with labels y_i, the cosine
similarity is s_i = q . f_i; with N_k(q) the k most similar training videos, class c scores

    score_c(q) = sum_{i in N_k(q), y_i = c} exp(s_i / tau)

normalised to sum to 1 over classes (the temperature-weighted vote of Wu et al., CVPR 2018,
used with k = 20, tau = 0.07 by DINO and most SSL evaluations). The prediction is the argmax.

Shape legend: Q test videos, N training videos, D features, K classes.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

from vssl_core.build import build_objective
from vssl_core.config import Config
from vssl_core.engine.distributed import init_distributed, shutdown
from vssl_core.plugins import PluginHost
from vssl_core.recipe import dump_yaml
from vssl_core.registry import component
from vssl_eval.results import write_results
from vssl_eval.runner import DistEnv, batch_scores, run_test, view_loader
from vssl_eval.session import EvalResult, EvalSettings, prepare

log = logging.getLogger("vssl.eval")


def knn_scores(
    test_QD: torch.Tensor,
    train_ND: torch.Tensor,
    train_labels_N: torch.Tensor,
    num_classes: int,
    k: int,
    temperature: float,
    chunk: int = 1024,
) -> torch.Tensor:
    """Class scores [Q, K] of the weighted vote (rows sum to 1)."""
    if test_QD.ndim != 2 or train_ND.ndim != 2 or test_QD.shape[1] != train_ND.shape[1]:
        raise ValueError(
            f"knn: features must be [Q, D] and [N, D], got {list(test_QD.shape)} and "
            f"{list(train_ND.shape)}"
        )
    if train_labels_N.shape != (train_ND.shape[0],):
        raise ValueError(
            f"knn: {train_ND.shape[0]} training features, labels {list(train_labels_N.shape)}"
        )
    if k < 1 or temperature <= 0:
        raise ValueError(
            f"knn: k must be >= 1 and temperature > 0, got k={k}, temperature={temperature}"
        )
    k = min(k, train_ND.shape[0])
    train_ND = F.normalize(train_ND.float(), dim=1)
    out = []
    for start in range(0, test_QD.shape[0], chunk):
        q_QD = F.normalize(test_QD[start : start + chunk].float(), dim=1)
        sim_Qk, idx_Qk = (q_QD @ train_ND.T).topk(k, dim=1)
        weights_Qk = torch.exp((sim_Qk - 1.0) / temperature)  # exp(s/tau) up to a row constant
        votes_QK = torch.zeros(q_QD.shape[0], num_classes, device=q_QD.device)
        votes_QK.scatter_add_(1, train_labels_N[idx_Qk].long(), weights_Qk)
        out.append(votes_QK / votes_QK.sum(dim=1, keepdim=True))
    return torch.cat(out)


def video_features(clip_features_BVD: torch.Tensor) -> torch.Tensor:
    """One unit feature per video: the mean of its views' unit features, renormalised."""
    return F.normalize(F.normalize(clip_features_BVD.float(), dim=-1).mean(dim=1), dim=-1)


@component("protocol", name="knn")
class Knn:
    """Weighted k-nearest-neighbour vote on frozen, L2-normalised features (no training)."""

    def __init__(self, k: int = 20, temperature: float = 0.07) -> None:
        if k < 1 or temperature <= 0:
            raise ValueError(f"knn: k must be >= 1 and temperature > 0, got {k}, {temperature}")
        self.k, self.temperature = k, temperature

    def run(self, config: Config, host: PluginHost) -> EvalResult:
        settings, data = prepare(config, host)
        if data.task != "classification":
            raise ValueError(
                f"knn classifies; the dataset's task is {data.task!r}: use finetune or linear"
            )
        if settings.val_dataset:
            raise ValueError("knn selects no model: remove eval.val_dataset")
        run_dir = Path(config.run.output_root) / config.run.name
        if (run_dir / "metrics.json").exists():
            raise ValueError(
                f"{run_dir} already holds an evaluation (metrics.json); choose another "
                "run.name (nothing was overwritten)"
            )
        info = init_distributed(config.train.device)
        try:
            env = DistEnv(info.rank, info.world_size, info.device)
            if env.is_main:
                run_dir.mkdir(parents=True, exist_ok=True)
                (run_dir / "recipe.yaml").write_text(
                    f"# resolved from {config.path}\n" + dump_yaml(config.data)
                )
            torch.manual_seed(config.run.seed)
            model = build_objective(host.registry, config.data).to(env.device).eval()
            payload = self._evaluate(model, config, settings, data, env, run_dir)
        finally:
            shutdown(info)
        return EvalResult(run_dir, "completed", payload["metrics"])

    def _evaluate(
        self, model, config, settings: EvalSettings, data, env: DistEnv, run_dir: Path
    ) -> dict:
        spec = model.views()
        views = settings.test_views(spec)
        workers, precision = config.loader.num_workers, config.train.precision
        run = partial(
            batch_scores, model.features, env=env, mean=spec.mean, std=spec.std, precision=precision
        )
        bank_ND, labels_N, failed_train = feature_bank(
            run, view_loader(data.train, views, env, settings.test_batch_size, workers), env
        )
        vote = partial(
            knn_vote,
            bank_ND=bank_ND,
            labels_N=labels_N,
            num_classes=data.num_classes,
            k=self.k,
            temperature=self.temperature,
        )
        out = run_test(
            model.features,
            view_loader(data.test, views, env, settings.test_batch_size, workers),
            env,
            "classification",
            data.num_classes,
            vote,
            spec.mean,
            spec.std,
            precision,
        )
        info = {
            "protocol": "knn",
            "task": data.task,
            "num_classes": data.num_classes,
            "checkpoint": config.data["objective"].get("backbone_checkpoint"),
            "k": self.k,
            "temperature": self.temperature,
            "num_train_videos": int(bank_ND.shape[0]),
            "failed_train_videos": failed_train,
            "test_dataset": settings.test_dataset,
            "views": {
                "clips": views.num_clips,
                "crops": views.num_crops,
                "frames": views.frames,
                "stride": views.stride,
                "crop_size": views.crop_size,
                "short_side": views.short_side,
            },
        }
        return write_results(run_dir, env, out, info)


def knn_vote(features_BVD, bank_ND, labels_N, num_classes, k, temperature) -> torch.Tensor:
    return knn_scores(video_features(features_BVD), bank_ND, labels_N, num_classes, k, temperature)


def feature_bank(score_batch, loader, env: DistEnv) -> tuple[torch.Tensor, torch.Tensor, list]:
    """Unit video features and labels of every training video, gathered from all ranks."""
    index, feats, labels, failed = [], [], [], []
    for batch in loader:
        failed += batch.failed
        if batch.views is None:
            continue
        feats.append(video_features(score_batch(batch)).cpu())
        labels.append(batch.labels)
        index += batch.index
    local = (
        index,
        torch.cat(feats) if feats else None,
        torch.cat(labels) if labels else None,
        failed,
    )
    parts = [local]
    if env.world_size > 1:
        parts = [None] * env.world_size
        dist.all_gather_object(parts, local)
    order = [i for p in parts for i in p[0]]
    bank = torch.cat([p[1] for p in parts if p[1] is not None])
    lab = torch.cat([p[2] for p in parts if p[2] is not None])
    perm = torch.as_tensor(sorted(range(len(order)), key=order.__getitem__))
    if failed_all := [f for p in parts for f in p[3]]:
        log.warning(
            "%d training video(s) could not be decoded and are left out of the kNN bank",
            len(failed_all),
        )
    return bank[perm].to(env.device), lab[perm].to(env.device), failed_all
