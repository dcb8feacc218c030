"""A checkpoint that is not one (``fusionrt train export`` / ``ship``) is one line naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from fusionrt.plugins.models.reference import model as reference_model  # noqa: E402
from fusionrt.plugins.models.reference.network import NetworkConfig, ReferenceNetwork  # noqa: E402
from fusionrt.plugins.models.reference.train.trainer import (  # noqa: E402
    TrainConfig,
    load_checkpoint,
    save_checkpoint,
)
from fusionrt.runtime import cli  # noqa: E402
from fusionrt.runtime.errors import ConfigError  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real checkpoint of a fresh network, as ``fusionrt train fit`` writes it."""
    path = tmp_path_factory.mktemp("ckpt") / "fresh.pt"
    save_checkpoint(
        path, ReferenceNetwork(NetworkConfig()), TrainConfig(), step=1, wall_s=0.1, drives=["d"]
    )
    return path


def _variants(checkpoint: Path, folder: Path) -> dict[str, tuple[Path, str]]:
    """Damaged and foreign checkpoints, with the start of the message each must give."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    out: dict[str, tuple[Path, str]] = {}

    def write(name: str, data: bytes, expected: str) -> None:
        (folder / name).write_bytes(data)
        out[name] = (folder / name, expected)

    def save(name: str, obj: object, expected: str) -> None:
        torch.save(obj, folder / name)
        out[name] = (folder / name, expected)

    write("garbage.pt", b"not a checkpoint\x00" * 16, "not a readable checkpoint: ")
    write("truncated.pt", checkpoint.read_bytes()[:4096], "not a readable checkpoint: ")
    write("empty.pt", b"", "not a readable checkpoint: ")
    save("a_list.pt", [1, 2, 3], "not a fusionrt reference checkpoint (written by")
    save("no_weights.pt", {k: v for k, v in state.items() if k != "network"}, "not a fusionrt")
    wider = {**state, "network_config": {**state["network_config"], "width": 2.0}}
    save("wrong_width.pt", wider, "checkpoint weights do not fit its network config")
    strange = {**state, "network_config": {"depth": 3}}
    save("strange_config.pt", strange, "checkpoint weights do not fit its network config")
    return out


VARIANTS = [
    "garbage.pt",
    "truncated.pt",
    "empty.pt",
    "a_list.pt",
    "no_weights.pt",
    "wrong_width.pt",
    "strange_config.pt",
]


@pytest.mark.parametrize("name", VARIANTS)
def test_a_bad_checkpoint_is_a_config_error_naming_it(checkpoint, tmp_path, name):
    path, expected = _variants(checkpoint, tmp_path)[name]
    with pytest.raises(ConfigError) as info:
        load_checkpoint(path)
    assert info.value.message.startswith(expected) and info.value.context == {"file": str(path)}
    assert len(str(info.value)) < 400


def test_the_commands_print_one_line_and_write_nothing(checkpoint, tmp_path, capsys):
    shipped = {
        p: p.stat().st_mtime_ns for p in (reference_model.ONNX_PATH, reference_model.WEIGHTS_PATH)
    }
    path, _ = _variants(checkpoint, tmp_path)["truncated.pt"]
    onnx = tmp_path / "out.onnx"
    for argv in (["train", "export", str(path), "--onnx", str(onnx)], ["train", "ship", str(path)]):
        assert cli.main(argv) == 1
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith("fusionrt: error: ConfigError: not a readable checkpoint: ")
        assert line.endswith(f"[file={str(path)!r}]")
    assert not onnx.exists()
    assert shipped == {p: p.stat().st_mtime_ns for p in shipped}


def test_a_good_checkpoint_loads(checkpoint):
    network, state = load_checkpoint(checkpoint)
    assert not network.training and state["step"] == 1 and "network" not in state


def test_an_attention_checkpoint_exports_and_runs_with_its_fusion_weights(tmp_path):
    """``fusionrt train export`` of an attention network writes its third output; the model
    plugin's ``onnx`` option finds it, runs the file on ONNX Runtime and explains with it."""
    import numpy as np

    from fusionrt.runtime.engines.onnxruntime import OnnxRuntimeEngine

    path = tmp_path / "attention.pt"
    config = TrainConfig(network=NetworkConfig(fusion="attention"))
    save_checkpoint(
        path, ReferenceNetwork(config.network), config, step=1, wall_s=0.1, drives=["d"]
    )
    onnx = tmp_path / "attention.onnx"
    assert cli.main(["train", "export", str(path), "--onnx", str(onnx)]) == 0
    model = reference_model.ReferenceModel(onnx=str(onnx))
    assert [s.name for s in model.output_specs()][-1] == "fusion_weights"
    feed = model.sample_feeds()[0]
    with OnnxRuntimeEngine.from_source(model.network_source()) as engine:
        outputs = engine.infer(feed)
    weights = model.explain(outputs)["fusion_weights"]
    assert set(weights) == {"camera", "lidar", "radar"}
    assert np.isclose(sum(weights.values()), 1.0, atol=1e-5)
    with pytest.raises(ConfigError, match="not a readable ONNX file"):
        reference_model.ReferenceModel(onnx=str(path)).output_specs()  # a .pt is not ONNX
