"""Load the benchmark scripts (not a package) as modules, once per test session."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_script(name: str):
    """benchmarks/<name>.py as the module ``vssl_bench_<name>`` (the scripts themselves import
    their helpers as ``common``, from benchmarks/ on sys.path)."""
    key = f"vssl_bench_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


@pytest.fixture(scope="session")
def overhead():
    return load_script("overhead")


@pytest.fixture(scope="session")
def gpu_throughput():
    return load_script("gpu_throughput")


@pytest.fixture(scope="session")
def memory():
    return load_script("memory")


@pytest.fixture(scope="session")
def common():
    load_script("overhead")  # puts benchmarks/ on sys.path and imports it as `common`
    return sys.modules["common"]


@pytest.fixture(scope="session")
def pretext_cues():
    return load_script("pretext_cues")


@pytest.fixture(scope="session")
def mini_severe():
    return load_script("mini_severe")


@pytest.fixture(scope="session")
def transform_speed():
    return load_script("transform_speed")


@pytest.fixture(scope="session")
def decoder_speed():
    return load_script("decoder_speed")


@pytest.fixture(scope="session")
def sinkhorn_speed():
    return load_script("sinkhorn_speed")


@pytest.fixture(scope="session")
def timeline():
    return load_script("timeline")


@pytest.fixture(scope="session")
def e2e_throughput():
    return load_script("e2e_throughput")


@pytest.fixture(scope="session")
def faults_campaign():
    return load_script("faults")


@pytest.fixture(scope="session")
def cpu_recipes():
    return load_script("cpu_recipes")


@pytest.fixture(scope="session")
def moving_shapes_design():
    return load_script("moving_shapes_design")
