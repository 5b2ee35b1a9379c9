"""The documented commands run: every shell command of README.md and docs/*.md, in document
order, in a scratch checkout per document (tests/docs/docs_kit.py says what counts as a
command). RULES shortens them with the overrides the documents themselves use, prepares what
the text describes in prose, and lists every command that is not run here with its reason.

A new document or command needs no change here when it runs as written in a few seconds; one
that takes longer gets a shortening rule, one that cannot run here a `skip` with its reason.
"""

from __future__ import annotations

import re

import pytest
from docs_kit import ROOT, Rule, documents, environment, extract, plan, run, workspace

DOCS = documents()


def steps(text: str) -> str:
    """train.max_steps=K as run here: K up to 20 as written, longer runs cut (keeping the order
    of K within a document, which resumes rely on), and 4 where a command trains a recipe's
    whole length."""

    def short(m: re.Match) -> str:
        k = int(m.group(1))
        return f"train.max_steps={k if k <= 20 else 20 + (k - 20) // 25}"

    if "train.max_steps=" in text:
        return re.sub(r"train\.max_steps=(\d+)", short, text)
    return f"{text} train.max_steps=4"


def small_eval(text: str) -> str:
    """An evaluation on the synthetic data with the sizes evaluation.md uses to shorten one."""
    return steps(text) + " data.dataset.num_samples=64 eval.test_dataset.num_samples=40"


SMALL_CLIPS = (  # the smoke run's clip sizes (evaluation.md), for a R(2+1)D-18 on the CPU
    " backbone.img_size=32 objective.frames=8 objective.crop_size=32 eval.test_short_side=32"
)
SMALL_SEVERE = (  # the overrides of evaluation.md's smoke run of every real recipe
    " train.max_steps=1 batch.global_size=2 data.num_workers=0 eval.test_clips=1"
    " eval.test_dataset.num_samples=8"
)
# what a doc installs goes to a folder of the test's own (environment() puts it on PYTHONPATH)
PIP_TARGET = 'pip install --quiet --no-deps --no-build-isolation --target "$VSSL_DOCS_SITE"'
# docs/datasets.md: "the synthetic UCF101 layout, with one video emptied and one cut to half"
DAMAGED_UCF101 = (
    "vssl data synth --layout ucf101 data/ucf101 >/dev/null"
    " && : > data/ucf101/UCF-101/CircleCcwFast/v_CircleCcwFast_g03_c01.avi"
    " && f=data/ucf101/UCF-101/LineRightFast/v_LineRightFast_g02_c01.avi"
    ' && truncate -s $(( $(stat -c %s "$f") / 2 )) "$f"'
)
# docs/faults.md: "a bit flipped inside a tensor of last.pt of a rotation run stopped at step 25"
FLIP = (
    "import sys, zipfile; p = sys.argv[1]; "
    "r = max((i for i in zipfile.ZipFile(p).infolist() if '/data/' in i.filename), "
    "key=lambda i: i.file_size); f = open(p, 'r+b'); f.seek(r.header_offset + 26); "
    "n, e = (int.from_bytes(f.read(2), 'little') for _ in range(2)); "
    "o = r.header_offset + 30 + n + e + r.file_size // 2; f.seek(o); b = f.read(1)[0]; "
    "f.seek(o); f.write(bytes([b ^ 1]))"
)
ROT400_CORRUPT = (
    "vssl train recipes/rotation.yaml run.name=rot400 train.max_steps=25"
    " checkpoint.every_steps=20 >/dev/null 2>&1"
    f' && python -c "{FLIP}" runs/rot400/checkpoints/last.pt'
)
# docs/evaluation.md converts torchvision's published R(2+1)D-18: the same layout, our weights
TORCHVISION_R2PLUS1D = (
    'python -c "import torch; from vssl_backbones.resnet3d import r2plus1d_18; '
    "torch.save(r2plus1d_18().state_dict(), 'r2plus1d_18-91a641e6.pth')\""
)

RULES = [
    # ---- not run here, with the reason
    Rule(
        "*",
        r"^make (setup|train|test)\b(?!.*RECIPE=)",
        skip="builds the environment this test runs in; .ci/run runs `make train` and `make test` as written",
    ),
    Rule(
        "*",
        r"^\. \.venv/bin/activate$",
        skip="this test runs the commands with its own environment's vssl first on PATH",
    ),
    Rule(
        "*",
        r"^apt-get install|^pip install .*\.\[ffcv\]",
        skip="installs system packages and the ffcv extra; CI's extras pass (.ci/run) does that, then runs the ffcv commands",
    ),
    Rule("*", r"^tensorboard ", skip="starts a server that runs until stopped"),
    Rule("*", r"--nnodes=2", skip="several machines"),
    Rule(
        "*",
        r"--root \w+=/data/",
        skip="the real datasets, not on this machine (the synthetic layouts of the same recipes run below it)",
    ),
    Rule(
        "docs/evaluation.md",
        r"^vssl \w+ (RECIPE|\[options\]|CHECKPOINT|--(from|to) [\w_]+ IN OUT|--from FORMAT)",
        skip="a synopsis: RECIPE, PATH, FORMAT... are placeholders",
    ),
    Rule(
        "docs/benchmarks.md",
        r"^python benchmarks/mini_severe.py(?!.*--tiny)",
        skip="a benchmark: 4-10 CPU-minutes per method and seed (tests/benchmarks/test_mini_severe.py runs its pipeline on a tiny budget)",
    ),
    Rule(
        "docs/benchmarks.md",
        r"mini_severe.py --tiny",
        skip="minutes of CPU time (tests/benchmarks/test_mini_severe.py runs the tiny pipeline)",
    ),
    Rule(
        "docs/benchmarks.md",
        r"^python benchmarks/cpu_recipes.py",
        skip="every method recipe as written: 12 CPU-minutes (tests/benchmarks/test_cpu_recipes.py runs one, shortened)",
    ),
    Rule(
        "docs/benchmarks.md",
        r"^P=runs/|pretext_cues.py \$P",
        skip="reads the runs of the mini_severe benchmarks above",
    ),
    Rule(
        "docs/faults.md",
        r"^python benchmarks/faults.py",
        skip="the fault-injection campaign: 28 minutes (its DDP part 3); tests/benchmarks/test_faults_campaign.py runs its --tiny mode",
    ),
    Rule(
        "docs/faults.md",
        r"run\.name=rot200 train\.max_steps=200 resume=auto$",
        skip="needs the first run still training meanwhile (in another terminal); tests/faults/test_fault_run_lock.py starts two",
    ),
    Rule(
        "docs/faults.md",
        r"run\.output_root=small ",
        skip="needs a 4 MB tmpfs mounted at small/ (root); tests/faults/test_fault_checkpoints.py mounts one when it can",
    ),
    Rule(
        "docs/distributed.md",
        r"^(RUN=sigma_k400|HEAD=\$\(scontrol|srun torchrun|if ! tail -1|scontrol requeue|fi$)",
        skip="a SLURM batch script: needs a SLURM cluster (tests/faults/test_fault_interrupts.py runs its resume=auto on one process)",
    ),
    Rule(
        "docs/distributed.md",
        r"^PYTHONPATH=tests torchrun .* -p kit\.faults",
        skip="the test suite's tiny recipe and fault plugin; tests/faults/test_fault_ddp.py runs it",
    ),
    Rule(
        "*",
        r"^kill -TERM <",
        skip="a signal sent by hand at a moment of the reader's choosing; the run before it is stopped at the step the output shows instead (tests/core/test_trainer.py sends SIGTERM for real)",
    ),
    # ---- prepared: what the text describes in prose
    Rule("*", r"&$", rewrite=lambda c: c[:-1].rstrip()),  # a run later stopped by hand (kill)
    Rule(
        "docs/getting-started.md",
        r"run\.name=rot200 train\.max_steps=200 &$",
        rewrite=lambda c: c.replace("train.max_steps=200", "train.max_steps=36"),
    ),  # stopped at step 36
    Rule(
        "docs/getting-started.md",
        r"run\.name=rot400 train\.max_steps=400 checkpoint\.every_steps=20$",
        rewrite=lambda c: c.replace("train.max_steps=400", "train.max_steps=25"),
    ),  # stopped at step 25 (Ctrl-C)
    Rule(
        "docs/faults.md",
        r"run\.name=rot400 train\.max_steps=400 checkpoint\.every_steps=20 resume=auto$",
        before=ROT400_CORRUPT,
    ),
    Rule(
        "docs/distributed.md",
        r"run\.name=pre_ddp &$",
        rewrite=lambda c: c.replace("train.max_steps=80", "train.max_steps=16"),
    ),  # stopped at step 16
    Rule(  # a ViT-tiny trained supervised for hundreds of steps: two of them
        "docs/benchmarks.md",
        r"^vssl train recipes/supervised.yaml 'backbone=\{\"name\":\"vit_tiny\"",
        rewrite=lambda c: re.sub(r"train\.max_steps=\d+", "train.max_steps=2", c),
    ),
    Rule(
        "*",
        r'^make train RECIPE="(.*)"$',
        rewrite=lambda c: "vssl train " + re.match(r'^make train RECIPE="(.*)"$', c).group(1),
    ),
    Rule(
        "docs/datasets.md", r"^vssl data check ucf101_rotation.yaml", before=DAMAGED_UCF101, rc=1
    ),  # 1: bad videos found
    Rule(
        "docs/evaluation.md",
        r"^vssl convert --from torchvision r2plus1d_18-91a641e6.pth",
        before=TORCHVISION_R2PLUS1D,
    ),
    Rule(  # the checkpoint's 512 training videos: fewer, with the override evaluation.md shows
        "*",
        r"^vssl extract \S+ --out",
        rewrite=lambda c: c + " data.dataset.num_samples=64",
    ),
    Rule(  # "a VideoMAE checkpoint": the CPU recipe's, two steps of it
        "docs/evaluation.md",
        r"^vssl convert --to videomae_hf runs/videomae/",
        before="vssl train recipes/videomae.yaml train.max_steps=2 >/dev/null 2>&1",
        needs="transformers",
    ),
    Rule(  # "a folder of videos": a few synthetic ones
        "docs/evaluation.md",
        r"--videos my_videos/",
        before="vssl data synth --layout video_list --num-classes 2 --videos-per-class 1"
        " data/some_videos >/dev/null && mkdir -p my_videos"
        " && cp data/some_videos/videos/train/*.mp4 my_videos/",
    ),
    Rule(
        "*",
        r"^pip install (-e )?",
        rewrite=lambda c: re.sub(r"^pip install (-e )?", PIP_TARGET + " ./", c),  # a path
    ),
    Rule("*", r"ffcv|\.beton", needs="ffcv"),
    Rule(
        "docs/evaluation.md",
        r"^vssl validate recipes/severe/ucf101_1k.yaml$",
        rc=2,
        output="Missing mandatory value: data.dataset.root",
    ),
    # ---- shortened, with the overrides the documents show
    Rule("*", r"^(vssl|torchrun .* -m vssl_core.cli) train ", rewrite=steps),
    Rule("*", r"^vssl eval recipes/eval/synthetic_", rewrite=small_eval),
    Rule("*", r"^vssl eval recipes/severe/", rewrite=steps),
    Rule("*", r"^vssl severe .*--synthetic", rewrite=lambda c: c + SMALL_SEVERE),
    # an R(2+1)D-18 at 64-112 px: a minute of CPU each as written
    Rule(
        "docs/evaluation.md",
        r"checkpoint=runs/r2plus1d_k400_supervised.pt",
        rewrite=lambda c: (
            c + " data.dataset.num_samples=16 eval.test_dataset.num_samples=8 eval.test_clips=1"
        ),
    ),
    Rule(
        "docs/evaluation.md",
        r"^vssl eval recipes/severe/ucf101_1k.yaml data.dataset.root=",
        rewrite=lambda c: c + SMALL_CLIPS,
    ),
    # two of the eight real settings (a minute of CPU as written): a counting and a multi-label
    # one; tests/recipes/test_severe_recipes.py builds every recipe's datasets from its layout
    Rule(
        "docs/evaluation.md",
        r"^vssl severe --root .* --out runs/severe/smoke none",
        rewrite=lambda c: c.replace(" none ", " --settings ucf_rc,charades none ", 1),
    ),
]


def _commands(path):
    return [(path, c) for c in extract(path)]


def _param(path):
    """A document with commands that need an optional extra also runs in CI's extras pass."""
    extra = any(r.needs and r.applies(c) for c in extract(path) for r in RULES)
    return pytest.param(
        path, id=path.relative_to(ROOT).as_posix(), marks=[pytest.mark.extras] if extra else []
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", [_param(p) for p in DOCS])
def test_the_documented_commands_run_in_order(path, tmp_path):
    folder = workspace(tmp_path / "work", DOCS)
    env = environment(tmp_path / "site")
    for cmd in extract(path):
        p = plan(cmd, RULES)
        if p.skip:
            print(f"skipped  {cmd}\n         ({p.skip})")
            continue
        problem = run(p, folder, env)
        print(f"{p.seconds:6.1f} s {cmd}")
        assert problem is None, f"{cmd}\n  ran: {p.run}\n  {problem}"


def test_commands_are_found_and_every_rule_is_used():
    """The extraction sees the documents' commands, and no rule outlives the command it was
    written for (a stale skip would hide a new command)."""
    commands = [c for path in DOCS for c in extract(path)]
    texts = {c.text for c in commands}
    assert "vssl train recipes/rotation.yaml train.max_steps=100" in texts  # README, bash
    assert "vssl config --gpus 64 recipes/zoo/sigma_vitb_k400.yaml" in texts  # console
    failing = {c.text for c in commands if c.expect_error}
    assert "vssl config --gpus 64 recipes/zoo/sigma_vitb_k400.yaml" in failing
    joined = [t for t in texts if t.startswith("vssl eval recipes/severe/ucf101_1k.yaml data")]
    assert joined and joined[0].endswith("eval.test_batch_size=1")  # continuations joined
    for rule in RULES:
        rule.used.clear()
    for c in commands:
        plan(c, RULES)
    assert not [r.match for r in RULES if not r.used], "rules that match no command"
