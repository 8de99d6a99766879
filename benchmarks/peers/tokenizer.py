"""A small local BPE tokenizer in the Hugging Face directory layout, for tools that need one.

AIPerf, GuideLLM and ``vllm bench serve`` load a tokenizer with transformers'
``AutoTokenizer.from_pretrained(dir)``. Nothing here may come from the hub, so a 4k-token
byte-level BPE is trained on a generated corpus with the ``tokenizers`` package and written
as ``tokenizer.json`` + ``tokenizer_config.json`` + ``special_tokens_map.json``
(``tokenizer_class`` ``PreTrainedTokenizerFast``, which transformers 4.x and 5.x both load).
The reference server does not tokenize, so the tokenizer only shapes prompts and the
tools' own client-side counts; output counts below come from the tools' usage fields.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

__all__ = ["ensure_tokenizer"]

_SPECIALS = ("<|endoftext|>", "<|pad|>")
_TEXT = (
    "the a an of to and in is was for on that with as by at from it this be are model token "
    "server request stream latency metric cache client event second core ceiling profile "
    "hello world user assistant system answer question one two three four five six seven "
    "eight nine ten red green blue fast slow time first last data"
)


def _corpus(n_lines: int = 20_000, seed: int = 0) -> Iterator[str]:
    rnd = random.Random(seed)
    words = _TEXT.split()
    for _ in range(n_lines):
        line = " ".join(rnd.choice(words) for _ in range(rnd.randint(3, 20)))
        if rnd.random() < 0.3:
            line += f" {rnd.randint(0, 99_999)}"
        yield line.capitalize() + rnd.choice(".?!,")


def ensure_tokenizer(directory: Path, vocab_size: int = 4096) -> Path:
    """Build the tokenizer directory unless it already holds one; return the directory."""
    if (directory / "tokenizer.json").is_file() and (directory / "tokenizer_config.json").is_file():
        return directory
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(_SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    directory.mkdir(parents=True, exist_ok=True)
    tok.save(str(directory / "tokenizer.json"))
    specials = {"eos_token": _SPECIALS[0], "pad_token": _SPECIALS[1]}
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": 1_048_576,
        "bos_token": None,
        "unk_token": None,
        "clean_up_tokenization_spaces": False,
        **specials,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    (directory / "special_tokens_map.json").write_text(json.dumps(specials, indent=2) + "\n")
    return directory
