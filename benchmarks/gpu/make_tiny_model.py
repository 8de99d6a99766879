"""A random-weight Llama with a trained BPE tokenizer whose vocabulary fills the model's, saved
to a folder that ``transformers serve`` loads without any download (the recipe verified on the
H200: ../shared/reference/gpu/README.md). Sizes are arguments so a second, larger model moves
the GPU evidence (issue 10).

    python3 benchmarks/gpu/make_tiny_model.py /tmp/tinyllama --hidden 1024 --layers 8
"""

from __future__ import annotations

import argparse
import random


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=2048)
    a = ap.parse_args()

    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel()
    tok.decoder = decoders.ByteLevel()
    rnd = random.Random(0)
    words = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 9)))
             for _ in range(5000)]
    trainer = trainers.BpeTrainer(vocab_size=a.vocab, special_tokens=["<unk>", "<s>", "</s>"])
    tok.train_from_iterator([" ".join(rnd.choices(words, k=200)) for _ in range(2000)], trainer)
    ft = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                 unk_token="<unk>")
    ft.chat_template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n"
                        "{% endfor %}assistant:")
    cfg = LlamaConfig(hidden_size=a.hidden, intermediate_size=int(a.hidden * 2.75) // 64 * 64,
                      num_hidden_layers=a.layers, num_attention_heads=a.heads,
                      num_key_value_heads=a.kv_heads, vocab_size=ft.vocab_size,
                      max_position_embeddings=4096, bos_token_id=1, eos_token_id=2)
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(a.out)
    ft.save_pretrained(a.out)
    n = sum(p.numel() for p in model.parameters())
    print(f"saved {a.out}: {n / 1e6:.0f} M parameters, vocab {ft.vocab_size}")


if __name__ == "__main__":
    main()
