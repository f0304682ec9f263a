"""Weight sync building blocks: merged weights of (LoRA) models, saved checkpoints, the registry.

The pushes themselves run against a loopback server in ``test_server_engine.py``.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from reasonloop.errors import ConfigError, PolicyError, UnknownNameError
from reasonloop.training.weight_sync import (
    WEIGHT_SYNCS,
    NoSync,
    ServerLink,
    WeightSyncConfig,
    build_weight_sync,
    merged_weights,
    save_merged,
)

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")


def _trained_lora(seed: int = 3) -> tuple[Any, Any, Any]:
    """``(tokenizer, plain copy of the base, LoRA model)`` whose adapters are non-zero."""
    from reasonloop.training.toy import toy_policy_pair

    tokenizer, base = toy_policy_pair(seed=seed)
    plain = copy.deepcopy(base)
    model = peft.get_peft_model(base, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                      task_type="CAUSAL_LM"))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # stands in for training: lora_B starts at zero
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.3)
    return tokenizer, plain, model


def _logits(model: Any, ids: list[int]) -> Any:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0]


def test_plain_model_weights_are_its_parameters() -> None:
    from reasonloop.training.toy import toy_policy_pair

    _, model = toy_policy_pair(seed=1)
    got = dict(merged_weights(model))
    want = dict(model.named_parameters())
    assert list(got) == list(want)  # tied lm_head appears once, as named_parameters gives it
    assert all(torch.equal(got[n], want[n]) for n in want)


def test_lora_deltas_are_folded_in_and_the_model_is_untouched() -> None:
    _, plain, model = _trained_lora()
    ids = [5, 17, 42, 9, 100, 3]
    before = _logits(model, ids)
    got = dict(merged_weights(model))
    assert list(got) == [n for n, _ in plain.named_parameters()]
    reference = copy.deepcopy(model).merge_and_unload()
    ref = dict(reference.named_parameters())
    assert all(torch.allclose(got[n], ref[n], atol=1e-6) for n in got)
    # q_proj really changed (the adapter is not a no-op) and the trained model still has its adapters
    q = "model.layers.0.self_attn.q_proj.weight"
    assert (got[q] - dict(plain.named_parameters())[q]).abs().max() > 1e-3
    assert any("lora_A" in n for n, _ in model.named_parameters())
    assert torch.equal(_logits(model, ids), before)
    plain.load_state_dict(got, strict=False)
    assert torch.allclose(_logits(plain, ids), before, atol=1e-5)


def test_saved_merged_checkpoint_loads_as_the_trained_model(tmp_path: Any) -> None:
    from transformers import AutoModelForCausalLM

    _, _, model = _trained_lora(seed=4)
    out = save_merged(model, tmp_path / "ckpt")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    loaded = AutoModelForCausalLM.from_pretrained(out, local_files_only=True)
    ids = [7, 8, 9, 10, 11]
    assert torch.allclose(_logits(loaded, ids), _logits(model, ids), atol=1e-5)


def test_registry_and_config_checks(tmp_path: Any) -> None:
    assert WEIGHT_SYNCS.names() == ["checkpoint_reload", "lora_reload", "none"]
    assert isinstance(build_weight_sync(), NoSync) and not build_weight_sync().updates_server
    with pytest.raises(UnknownNameError, match="checkpoint_reload, lora_reload, none"):
        build_weight_sync(WeightSyncConfig(kind="nccl"))
    with pytest.raises(ConfigError, match="shared_dir"):
        build_weight_sync(WeightSyncConfig(kind="lora_reload"))
    with pytest.raises(ConfigError, match="absolute"):
        WeightSyncConfig(kind="checkpoint_reload", shared_dir=str(tmp_path), server_dir="relative/dir")
    lora = build_weight_sync(WeightSyncConfig(kind="lora_reload", shared_dir=str(tmp_path), name_prefix="run"))
    assert lora.kind == "lora_reload" and lora.updates_server


def test_link_routes_and_unreachable_server() -> None:
    link = ServerLink(base_url="http://127.0.0.1:9/v1", timeout_s=2)
    assert link.root == "http://127.0.0.1:9"
    with pytest.raises(PolicyError, match="unreachable") as info:
        link.post(f"{link.root}/start_weight_update")
    assert info.value.retryable
