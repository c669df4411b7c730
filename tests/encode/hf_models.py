"""Test inputs for the model-backed encoder: states and tiny causal LMs built from a config (no download)."""

from __future__ import annotations

STATES = ["⊢ a", "x y : ℕ\n⊢ x + y = y + x", "⊢ ∀ (n : ℕ), n + 0 = n", "h : a ≤ b\n⊢ a < b + 1 ∨ a = b + 7 * c",
          "α : Type u_1\ninst✝ : Field α\na b : α\nh : a ≠ 0\n⊢ a * b / a = b"]


def save_tiny_causal_lm(folder, kind: str, *, padding_side: str = "left", seed: int = 0):
    """A randomly initialised 2-layer decoder-only LM (``llama``: RoPE, like DeepSeek-Prover; ``gpt2``: absolute
    positions) saved as a *ForCausalLM checkpoint with the MiniLM tokenizer; nothing is downloaded."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    from workbench.encode.local import minilm_model_path

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_model_path()))
    tokenizer.padding_side = padding_side
    tokenizer.save_pretrained(folder)
    special = {"bos_token_id": tokenizer.cls_token_id, "eos_token_id": tokenizer.sep_token_id,
               "pad_token_id": tokenizer.pad_token_id}
    torch.manual_seed(seed)
    if kind == "llama":
        config = LlamaConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128, **special)
        model = LlamaForCausalLM(config)
    else:
        config = GPT2Config(vocab_size=tokenizer.vocab_size, n_embd=32, n_layer=2, n_head=4, n_positions=128, **special)
        model = GPT2LMHeadModel(config)
    model.save_pretrained(folder)
    return folder
