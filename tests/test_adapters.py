"""LoRA adapters merged into a model: exact update, the weight's own device and dtype, and clear
errors for an adapter made for another model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from rig.adapters import AdapterError, merge_adapters, read_adapter, write_adapter


def model(dtype: torch.dtype = torch.float32, device: str = "cpu") -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 4)).to(device=device, dtype=dtype)


def adapter(folder: Path, out: int = 4, into: int = 6, rank: int = 2) -> Path:
    generator = torch.Generator().manual_seed(1)
    tensors = {
        "0.lora_A.weight": torch.randn(rank, into, generator=generator),
        "0.lora_B.weight": torch.randn(out, rank, generator=generator),
    }
    return write_adapter(folder, tensors, {"rank": rank, "alpha": 4})


def test_merge_adds_the_scaled_update(tmp_path: Path) -> None:
    folder = adapter(tmp_path / "a")
    net = model()
    before = net[0].weight.detach().clone()
    merge_adapters(net, [(folder, 0.5)])
    tensors, _ = read_adapter(folder)
    expected = before + 0.5 * (4 / 2) * tensors["0.lora_B.weight"] @ tensors["0.lora_A.weight"]
    torch.testing.assert_close(net[0].weight.detach(), expected)


def test_merge_in_fp32_on_the_weights_device_then_cast(tmp_path: Path) -> None:
    folder = adapter(tmp_path / "a")
    half = model(torch.bfloat16)
    before = half[0].weight.detach().float()
    merge_adapters(half, [(folder, 1.0)])
    tensors, _ = read_adapter(folder)
    update = 2.0 * tensors["0.lora_B.weight"] @ tensors["0.lora_A.weight"]  # α/r = 4/2
    assert half[0].weight.dtype == torch.bfloat16
    torch.testing.assert_close(half[0].weight, (before + update).to(torch.bfloat16), rtol=0, atol=0)
    # a model on another device (meta stands in for a GPU): the update is built there, so no
    # "expected all tensors to be on the same device"
    elsewhere = model(device="meta")
    merge_adapters(elsewhere, [(folder, 1.0)])
    assert elsewhere[0].weight.device.type == "meta"


def test_an_adapter_for_another_model_is_named(tmp_path: Path) -> None:
    wrong_shape = adapter(tmp_path / "wide", out=5)
    with pytest.raises(AdapterError, match=r"0 is \(4, 6\), the adapter makes \(5, 6\)"):
        merge_adapters(model(), [(wrong_shape, 1.0)])
    other = write_adapter(
        tmp_path / "other",
        {"blocks.9.lora_A.weight": torch.ones(2, 6), "blocks.9.lora_B.weight": torch.ones(4, 2)},
        {"rank": 2, "alpha": 2},
    )
    with pytest.raises(AdapterError, match=r"does not fit this model \(no blocks\.9\)"):
        merge_adapters(model(), [(other, 1.0)])
    with pytest.raises(AdapterError, match="cannot be read"):
        merge_adapters(model(), [(tmp_path / "missing", 1.0)])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_strengths_change_without_drift(tmp_path: Path, dtype: torch.dtype) -> None:
    """A re-merge starts from the kept weights: back at 0 the model is its old self, bit for
    bit, after many changes."""
    folder = adapter(tmp_path / "a")
    net = model(dtype)
    before = net[0].weight.detach().clone()
    mix = merge_adapters(net, [(folder, 1.0)])
    once = net[0].weight.detach().clone()
    for strength in torch.linspace(0, 2, 50).tolist():
        mix.set_strengths((strength,))
    mix.set_strengths((1.0,))
    assert torch.equal(net[0].weight, once)
    mix.set_strengths((0.0,))
    assert torch.equal(net[0].weight, before) and mix.strengths == (0.0,)
    with pytest.raises(AdapterError, match="2 strengths for 1 adapters"):
        mix.set_strengths((1.0, 1.0))
