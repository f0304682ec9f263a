"""A GGUF file as the trainer's base: path resolution, config checks, training, saving, reloading.

The GGUF file is written here from the toy pair (a Qwen2 architecture with a
byte-level BPE tokenizer, float32 tensors), so transformers rebuilds the same
tokenizer, chat template and weights from it in well under a second: the whole
GGUF path runs without the 135M-parameter SmolLM2 (tests/policy/test_smollm2.py
trains that one).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reasonloop.errors import ConfigError
from reasonloop.training.config import load_config, resolve_model_path

torch = pytest.importorskip("torch")
gguf = pytest.importorskip("gguf")

_LAYER_NAMES = {
    "input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight", "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.weight": "attn_k.weight", "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.weight": "attn_v.weight", "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight", "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight",
}


def write_gguf(tokenizer: Any, model: Any, path: Path) -> Path:
    """Write a tied-embedding Qwen2 model and its byte-level BPE tokenizer as GGUF (float32)."""
    cfg = model.config
    writer = gguf.GGUFWriter(str(path), "qwen2")
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_rope_freq_base(float(cfg.rope_parameters["rope_theta"]))
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_vocab_size(cfg.vocab_size)
    tokens = sorted(tokenizer.get_vocab(), key=tokenizer.get_vocab().get)
    special = {t.content for t in tokenizer.added_tokens_decoder.values()}
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if t in special else 1 for t in tokens])  # 3: control (kept whole)
    merges = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["merges"]
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_chat_template(tokenizer.chat_template)
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
    for i in range(cfg.num_hidden_layers):
        names.update({f"model.layers.{i}.{k}": f"blk.{i}.{v}" for k, v in _LAYER_NAMES.items()})
    for key, tensor in model.state_dict().items():
        if key != "lm_head.weight":  # tied to the embedding
            writer.add_tensor(names[key], tensor.detach().float().numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def gguf_base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A directory holding one GGUF file, and the toy pair it was written from."""
    from reasonloop.training.toy import toy_policy_pair

    tokenizer, model = toy_policy_pair(seed=3)
    folder = tmp_path_factory.mktemp("gguf-base")
    file = write_gguf(tokenizer, model, folder / "toy.gguf")
    return {"dir": folder, "file": file, "tokenizer": tokenizer, "model": model}


def _logits(model: Any, ids: list[int]) -> Any:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits


def _prompt_ids(tokenizer: Any) -> list[int]:
    return list(tokenizer.apply_chat_template([{"role": "user", "content": "Code of 42?"}], add_generation_prompt=True,
                                              tokenize=True, return_dict=False))


def _load_base(gguf_base: dict[str, Any]) -> tuple[Any, Any]:
    """A fresh ``(tokenizer, model)`` loaded from the GGUF file."""
    from reasonloop.training.setup import load_model

    return load_model(resolve_model_path(str(gguf_base["file"])))


def _train_yaml(path: Path, out: Path, model: str, *, lora: bool) -> Path:
    lora_line = "  lora: {r: 4, alpha: 8, target_modules: [q_proj, v_proj]}\n" if lora else ""
    path.write_text(
        f"out_dir: {out}\ncheckpoint_every: 0\ndeterministic: true\n"
        f"model: {{path: {model}, device: cpu}}\n"
        "rollout: {mode: grpo, group_size: 2, max_tokens: 6, max_steps: 1}\n"
        # A random model earns equal rewards (zero advantages): the entropy bonus still moves it.
        "algo: {entropy_coef: 1.0}\n"
        f"optim:\n  steps: 1\n  prompts_per_step: 1\n  lr: 0.01\n{lora_line}"
        "logging: {plots: false}\n", encoding="utf-8")
    return path


def test_bad_model_paths_are_config_errors(tmp_path: Path) -> None:
    two = tmp_path / "two"
    two.mkdir()
    (two / "a.gguf").write_bytes(b"")
    (two / "b.gguf").write_bytes(b"")
    (tmp_path / "empty").mkdir()
    (tmp_path / "weights.bin").write_bytes(b"")
    cases = {
        str(tmp_path / "missing.gguf"): r"model\.path: .*no model at .*missing\.gguf",
        str(two): r"model\.path: .*holds 2 \.gguf files \(a\.gguf, b\.gguf\): name the one to load",
        str(tmp_path / "empty"): r"model\.path: .*neither config\.json \(a checkpoint\) nor a \.gguf file",
        str(tmp_path / "weights.bin"): r"model\.path: .*neither a \.gguf file nor a checkpoint directory",
        "hf:": r"model\.path: .*empty",
    }
    for path, message in cases.items():
        with pytest.raises(ConfigError, match=message):
            load_config({"model": {"path": path}})
    with pytest.raises(ConfigError, match=r"model\.path is required"):
        load_config({"model": {"kind": "hf"}})
    with pytest.raises(ConfigError, match="toy model needs a registry template"):
        load_config({"model": {"template": None}})
    from reasonloop.training.commands import train_command  # the CLI path: a ConfigError, no traceback

    with pytest.raises(ConfigError, match=r"holds 2 \.gguf files"):
        train_command(_train_yaml(tmp_path / "train.yaml", tmp_path / "run", str(two), lora=False))


def test_gguf_paths_resolve_and_default_to_their_own_template(gguf_base: dict[str, Any]) -> None:
    by_dir, by_file = resolve_model_path(str(gguf_base["dir"])), resolve_model_path(f"hf:{gguf_base['file']}")
    assert by_dir.path == by_file.path == gguf_base["file"] and by_dir.gguf and not by_dir.alias
    assert by_dir.model == f"hf:{gguf_base['dir']}"
    cfg = load_config({"model": {"path": str(gguf_base["dir"])}}).model
    assert (cfg.kind, cfg.template) == ("hf", None)  # the file's chat template, the one it is served with
    named = load_config({"model": {"path": str(gguf_base["file"]), "template": "tiny-tags"}}).model
    assert named.template == "tiny-tags"
    tiny = resolve_model_path("tiny")
    assert tiny.alias and not tiny.gguf and (tiny.path / "config.json").is_file()
    assert load_config({"model": {"path": "tiny"}}).model.template is None
    assert load_config({"model": {"path": f"hf:{tiny.path}"}}).model.template == "chatml-tags"  # as before


def test_build_model_from_gguf_matches_the_source_model(gguf_base: dict[str, Any]) -> None:
    from reasonloop.training.config import ModelSection
    from reasonloop.training.setup import build_engine, build_model

    cfg = ModelSection(path=str(gguf_base["dir"]), device="cpu")
    tokenizer, model = build_model(cfg)
    ids = _prompt_ids(gguf_base["tokenizer"])
    assert _prompt_ids(tokenizer) == ids
    assert tokenizer.pad_token == "<|pad|>"
    assert float((_logits(model, ids) - _logits(gguf_base["model"], ids)).abs().max()) == 0.0
    engine = build_engine(model, tokenizer, cfg)
    assert engine.template.name == "chatml-tags"  # recognised from the GGUF's own template
    assert engine.name == f"hf:{gguf_base['dir']}"
    engine.close()


def test_lora_training_on_gguf_saves_an_adapter_that_loads_back(gguf_base: dict[str, Any], tmp_path: Path) -> None:
    from reasonloop.policy.registry import load_policy
    from reasonloop.training.commands import train_command

    cfg = _train_yaml(tmp_path / "train.yaml", tmp_path / "run", str(gguf_base["file"]), lora=True)
    done = train_command(cfg, progress=False)
    assert done["step"] == 1 and done["model"] == f"hf:{gguf_base['file']}"
    adapter = Path(done["adapter"])
    assert (adapter / "adapter_model.safetensors").is_file() and not (tmp_path / "run" / "model").exists()
    tuned = load_policy(done["model"], adapter=str(adapter), device="cpu")
    ids = _prompt_ids(gguf_base["tokenizer"])
    # The run's last checkpoint holds the trained peft weights: merged into the base, the same function.
    from peft import LoraConfig, get_peft_model

    from reasonloop.training.checkpoint import latest_checkpoint, load_checkpoint, load_frozen

    root = tmp_path / "run" / "checkpoints"
    tensors, state = load_checkpoint(latest_checkpoint(root))
    # a checkpoint holds the adapters; the frozen base is written once beside the checkpoints
    assert tensors["model"] and all("lora_" in k for k in tensors["model"])
    _, base = _load_base(gguf_base)
    trained = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                              task_type="CAUSAL_LM"))
    trained.load_state_dict({**load_frozen(root, state["frozen"]), **tensors["model"]})
    want = _logits(trained, ids)
    assert float((_logits(tuned.model, ids) - want).abs().max()) < 1e-4
    assert float((want - _logits(gguf_base["model"], ids)).abs().max()) > 1e-3  # training moved it
    tuned.close()


def test_full_training_and_sft_on_gguf_save_checkpoints(gguf_base: dict[str, Any], tmp_path: Path) -> None:
    from reasonloop.policy.hf import HFPolicy, HFPolicyConfig
    from reasonloop.training.checkpoint import latest_checkpoint, load_checkpoint
    from reasonloop.training.commands import sft_command, train_command
    from reasonloop.training.config import RolloutSection
    from reasonloop.training.engine import HFEngine
    from reasonloop.training.setup import record_experts
    from reasonloop.training.toy import lookup_tasks, lookup_tool

    done = train_command(_train_yaml(tmp_path / "train.yaml", tmp_path / "run", str(gguf_base["dir"]), lora=False),
                         progress=False)
    assert done["adapter"] is None and done["model"] == f"hf:{tmp_path / 'run' / 'model'}"
    saved = tmp_path / "run" / "model"
    assert (saved / "model.safetensors").is_file() and (saved / "config.json").is_file()
    assert "quantization_config" not in json.loads((saved / "config.json").read_text())  # plain weights
    tensors, _ = load_checkpoint(latest_checkpoint(tmp_path / "run" / "checkpoints"))
    reloaded = HFPolicy.from_pretrained(saved, device="cpu")
    assert reloaded.template.name == "chatml-tags"
    state = reloaded.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in tensors["model"].items())
    assert not torch.equal(state["model.norm.weight"], gguf_base["model"].state_dict()["model.norm.weight"])
    reloaded.close()

    tokenizer, model = _load_base(gguf_base)
    engine = HFEngine(model, tokenizer, HFPolicyConfig(device="cpu"))
    trajs = record_experts(engine, lookup_tasks(3, seed=5), [lookup_tool()], RolloutSection(max_steps=3))
    jsonl = tmp_path / "experts.jsonl"
    jsonl.write_text("".join(t.to_json() + "\n" for t in trajs), encoding="utf-8")
    sft = sft_command(jsonl, str(gguf_base["dir"]), tmp_path / "tuned", steps=2, batch_size=3)
    assert sft["steps"] == 2 and sft["out"] == str(tmp_path / "tuned")
    assert (tmp_path / "tuned" / "model.safetensors").is_file()
    tuned = HFPolicy.from_pretrained(tmp_path / "tuned", device="cpu")
    ids = _prompt_ids(gguf_base["tokenizer"])
    assert float((_logits(tuned.model, ids) - _logits(gguf_base["model"], ids)).abs().max()) > 1e-3
    tuned.close()
    with pytest.raises(ConfigError, match="no model at"):
        sft_command(jsonl, str(tmp_path / "nowhere"), tmp_path / "x")
