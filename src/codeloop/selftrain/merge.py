"""Merge a LoRA adapter into its base GGUF: a full model that runs at the base's speed.

llama.cpp applies a runtime adapter as two extra small matrix products per adapted weight and
token (``W x + s * B (A x)``); on the 0.5B model that costs 1.4x time per token. Merging
computes ``W' = W + s * B @ A`` once (``s = alpha / r``, llama.cpp's scale) and writes a new
model GGUF in which every adapted tensor holds ``W'``:

1. the base is read with ``gguf.GGUFReader`` (memory-mapped); each adapted tensor is
   dequantised, the delta is added in float32, the result is written as F32 into an
   intermediate GGUF; every other tensor's bytes (also those of adapted tensors whose delta is
   exactly zero, as a fresh PEFT LoRA's) and all metadata are copied unchanged;
2. ``llama_model_quantize`` turns the intermediate into the final file with the base's file
   type, an override for every tensor naming its type in the base (so each adapted tensor is
   quantised back to exactly its base type, and every other tensor, already of that type, is
   copied byte for byte; requantising is never allowed);
3. the output's tensor types are checked against the base's, and the intermediate (a file
   this code created) is removed.

``tensor_type`` picks the merged tensors' type: ``q8_0`` (the default) or ``f16`` are written
directly (no step 2); ``base`` is the procedure above. Requantising to a 4-5 bit base type loses
most of a LoRA's small change (the delta is far below the quantisation step), Q8_0 keeps it; see
docs/selftrain.md for the measured fidelity and time per token of each (bench/adapter_speed.py).

Every file is written under a fresh name in the output's own directory (``mkstemp``: never an
existing file or a link), renamed into place only when complete, and removed on failure; nothing
else is ever removed.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codeloop.errors import CodeloopError
from codeloop.selftrain.constants import DEFAULT_MERGE_TYPE, MERGE_TYPES

__all__ = ["MERGE_TYPES", "MergeError", "MergeResult", "gguf_tensor_types", "merge_adapter", "merge_lora"]

_LORA_NAME = re.compile(r"^(?P<base>.+)\.lora_(?P<ab>[ab])$")

Say = Callable[[str], None]


class MergeError(CodeloopError):
    """An adapter could not be merged (missing gguf package, base mismatch, no disk space, ...)."""


@dataclass(frozen=True)
class MergeResult:
    path: Path  # the merged model GGUF
    tensor_type: str  # MERGE_TYPES entry used
    merged_tensors: int  # tensors that hold W + s B A
    scale: float  # alpha / r
    bytes: int
    seconds: float
    types_equal_base: bool  # every tensor of the output has its type in the base


def _gguf() -> Any:
    try:
        import gguf
    except ImportError as e:  # pragma: no cover - depends on the install
        raise MergeError(
            "merging adapters needs the gguf package: pip install 'codeloop[selftrain]' (or gguf)"
        ) from e
    return gguf


def _field(reader: Any, key: str) -> Any:
    field = reader.get_field(key)
    return field.contents() if field is not None else None


#: bytes of each fixed-size GGUF metadata value type (uint8 .. float64; 7 = bool)
_GGUF_SCALAR = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def gguf_tensor_types(path: Path) -> dict[str, str]:
    """``{tensor name: ggml type name}`` of a GGUF file, in file order.

    Reads only the header (gguf's reader parses every metadata value, 12 s for a 150k-token
    vocabulary); little-endian GGUF v2/v3.
    """
    import struct

    gguf = _gguf()
    with open(path, "rb") as fh:
        head = fh.read(24)
        if len(head) < 24 or head[:4] != b"GGUF":
            raise MergeError(f"{path} is not a GGUF file")
        _version, n_tensors, n_kv = struct.unpack_from("<IQQ", head, 4)

        def read(fmt: str) -> Any:
            size = struct.calcsize(fmt)
            data = fh.read(size)
            if len(data) != size:
                raise MergeError(f"{path}: truncated GGUF header")
            return struct.unpack("<" + fmt, data)[0]

        def skip_string() -> None:
            fh.seek(read("Q"), os.SEEK_CUR)

        def skip_value(vtype: int) -> None:
            if vtype in _GGUF_SCALAR:
                fh.seek(_GGUF_SCALAR[vtype], os.SEEK_CUR)
            elif vtype == _GGUF_STRING:
                skip_string()
            elif vtype == _GGUF_ARRAY:
                item, count = read("I"), read("Q")
                if item in _GGUF_SCALAR:
                    fh.seek(_GGUF_SCALAR[item] * count, os.SEEK_CUR)
                else:
                    for _ in range(count):
                        skip_value(item)
            else:
                raise MergeError(f"{path}: unknown GGUF value type {vtype}")

        for _ in range(n_kv):
            skip_string()
            skip_value(read("I"))
        types: dict[str, str] = {}
        for _ in range(n_tensors):
            name = fh.read(read("Q")).decode("utf-8")
            fh.seek(8 * read("I"), os.SEEK_CUR)  # the dimensions
            types[name] = gguf.GGMLQuantizationType(read("I")).name
            fh.seek(8, os.SEEK_CUR)  # the data offset
    return types


@dataclass(frozen=True)
class _Lora:
    alpha: float
    pairs: dict[str, tuple[np.ndarray, np.ndarray]]  # base tensor -> (A (r, in), B (out, r)), float32


def _read_lora(path: Path, architecture: str) -> _Lora:
    gguf = _gguf()
    try:
        reader = gguf.GGUFReader(str(path))
    except (OSError, ValueError) as e:
        raise MergeError(f"cannot read adapter {path}: {e}") from e
    if (
        _field(reader, gguf.Keys.General.TYPE) != "adapter"
        or _field(reader, gguf.Keys.Adapter.TYPE) != "lora"
    ):
        raise MergeError(f"{path} is not a LoRA adapter GGUF (general.type=adapter, adapter.type=lora)")
    arch = _field(reader, gguf.Keys.General.ARCHITECTURE)
    if arch != architecture:
        raise MergeError(f"adapter {path} is for architecture {arch!r}, the base model is {architecture!r}")
    alpha = float(_field(reader, gguf.Keys.Adapter.LORA_ALPHA) or 0.0)
    halves: dict[str, dict[str, np.ndarray]] = {}
    for t in reader.tensors:
        m = _LORA_NAME.match(t.name)
        if m is None:
            raise MergeError(
                f"adapter {path}: unexpected tensor {t.name!r} (only .lora_a/.lora_b are merged)"
            )
        halves.setdefault(m["base"], {})[m["ab"]] = np.asarray(
            gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32
        )
    pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, ab in halves.items():
        if set(ab) != {"a", "b"}:
            raise MergeError(f"adapter {path}: {name} has lora_{''.join(ab)} without its pair")
        a, b = ab["a"], ab["b"]
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
            raise MergeError(f"adapter {path}: {name} has lora shapes {a.shape} and {b.shape}")
        pairs[name] = (a, b)
    if not pairs:
        raise MergeError(f"adapter {path} holds no LoRA tensors")
    return _Lora(alpha, pairs)


def _fresh_file(directory: Path, stem: str) -> tuple[Path, os.stat_result]:
    """A new empty file in ``directory`` (O_EXCL: never an existing file or link); its path and identity."""
    fd, name = tempfile.mkstemp(prefix=f".{stem}.", suffix=".part", dir=directory)
    try:
        return Path(name), os.fstat(fd)
    finally:
        os.close(fd)


def _same_file(path: Path, identity: os.stat_result) -> bool:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    return (st.st_dev, st.st_ino) == (identity.st_dev, identity.st_ino) and not os.path.islink(path)


def _remove_own(path: Path, identity: os.stat_result) -> None:
    """Delete ``path`` only if it is still the file this code created."""
    if _same_file(path, identity):
        path.unlink()


def _check_fits(reader: Any, lora: _Lora, block: int, tensor_type: str) -> float:
    """Check that every adapted tensor exists in the base with the adapter's shape; llama.cpp's scale."""
    by_name = {t.name: t for t in reader.tensors}
    missing = sorted(set(lora.pairs) - set(by_name))
    if missing:
        raise MergeError(
            f"the adapter adapts tensors the base model lacks ({', '.join(missing[:3])}): wrong base?"
        )
    scales = set()
    for name, (a, b) in lora.pairs.items():
        dims = [int(n) for n in reversed(by_name[name].shape.tolist())]  # numpy order (out, in)
        if len(dims) != 2:
            raise MergeError(f"{name} is not a matrix in the base model ({dims}): wrong base?")
        rows, cols = dims
        if (b.shape[0], a.shape[1]) != (rows, cols):
            raise MergeError(
                f"adapter tensor {name} is {b.shape[0]}x{a.shape[1]}, the base's is {rows}x{cols}: wrong base?"
            )
        if cols % block:
            raise MergeError(f"{name} has {cols} columns, not a multiple of {tensor_type}'s block of {block}")
        scales.add(_scale(lora.alpha, a.shape[0]))
    return max(scales)


def _scale(alpha: float, rank: int) -> float:
    """llama.cpp's LoRA scale: ``alpha / rank``, or 1 when the adapter gives no alpha."""
    return alpha / rank if alpha else 1.0


def _write_merged(
    reader: Any,
    lora: _Lora,
    out: Path,
    identity: os.stat_result,
    merged_type: Any,
    say: Say,
) -> int:
    """Write ``reader``'s model with every adapted tensor replaced by ``W + s B A`` in ``merged_type``.

    Tensors whose delta is zero keep their bytes. Returns how many tensors were merged.
    """
    gguf = _gguf()
    q = gguf.GGMLQuantizationType
    architecture = _field(reader, gguf.Keys.General.ARCHITECTURE)
    writer = gguf.GGUFWriter(str(out), architecture)
    writer.data_alignment = reader.alignment
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue  # the writer adds these itself
        vtype = field.types[0]
        sub_type = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub_type)
    by_name = {t.name: t for t in reader.tensors}

    def merged(name: str) -> np.ndarray:
        t = by_name[name]
        a, b = lora.pairs[name]
        s = _scale(lora.alpha, a.shape[0])
        weight = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
        weight = weight + np.float32(s) * (b @ a)
        return np.ascontiguousarray(gguf.quants.quantize(weight, merged_type))

    active = _active(lora)
    for t in reader.tensors:
        if t.name in active:
            rows, cols = (int(n) for n in reversed(t.shape.tolist()))
            block, type_size = gguf.GGML_QUANT_SIZES[merged_type]
            nbytes = rows * cols // block * type_size
            shape = (rows, cols) if merged_type in (q.F32, q.F16) else (rows, cols // block * type_size)
            dtype = {q.F32: np.float32, q.F16: np.float16}.get(merged_type, np.uint8)
            writer.add_tensor_info(t.name, shape, np.dtype(dtype), nbytes, merged_type)
        else:
            writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
    writer.write_header_to_file()
    if writer.fout is None or (
        os.fstat(writer.fout[0].fileno()).st_ino,
        os.fstat(writer.fout[0].fileno()).st_dev,
    ) != (
        identity.st_ino,
        identity.st_dev,
    ):
        writer.close()
        raise MergeError(f"{out} changed while it was being opened: not writing through it")
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    done, last = 0, time.monotonic()
    for t in reader.tensors:
        data = merged(t.name) if t.name in active else t.data
        writer.write_tensor_data(data, tensor_endianess=reader.endianess)
        done += 1
        if time.monotonic() - last > 10:
            say(f"merge: {done}/{len(reader.tensors)} tensors written")
            last = time.monotonic()
    writer.close()
    return len(active)


def _active(lora: _Lora) -> set[str]:
    """The adapted tensors whose delta ``B @ A`` is not zero (PEFT initialises ``B`` to zeros)."""
    return {name for name, (a, b) in lora.pairs.items() if a.any() and b.any()}


def _quantize_like(src: Path, dst: Path, base_types: dict[str, Any], ftype: int, threads: int) -> None:
    """``llama_model_quantize`` src -> dst: every tensor to its type in ``base_types``, never requantising."""
    import ctypes

    import llama_cpp

    from codeloop.llm.llama_load import quiet_openmp

    quiet_openmp()
    params = llama_cpp.llama_model_quantize_default_params()
    params.nthread = threads
    params.ftype = ftype
    params.allow_requantize = False  # a tensor the overrides would change is an error, never a lossy copy
    overrides = (llama_cpp.llama_model_tensor_override * (len(base_types) + 1))()
    for i, (name, qtype) in enumerate(base_types.items()):
        overrides[i].pattern = f"^{re.escape(name)}$".encode()
        overrides[i].type = int(qtype)
    overrides[len(base_types)].pattern = None  # the list's end
    params.tt_overrides = ctypes.cast(overrides, ctypes.POINTER(llama_cpp.llama_model_tensor_override))
    lines: list[str] = []

    @llama_cpp.llama_log_callback
    def collect(level: int, text: bytes, _user: Any) -> None:
        lines.append(text.decode("utf-8", "replace"))

    llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))  # a line per tensor otherwise
    try:
        rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    finally:
        from llama_cpp._logger import llama_log_callback

        llama_cpp.llama_log_set(llama_log_callback, ctypes.c_void_p(0))
    if rc != 0:
        last = ("".join(lines).strip().splitlines() or ["no message"])[-1].strip()
        raise MergeError(f"llama.cpp could not quantise the merged model (returned {rc}): {last}")


def merge_lora(
    base: Path,
    adapter: Path,
    out: Path,
    *,
    tensor_type: str = DEFAULT_MERGE_TYPE,
    threads: int | None = None,
    say: Say = lambda _: None,
) -> MergeResult:
    """Write ``out``: the ``base`` GGUF with the LoRA ``adapter`` merged in (see the module doc)."""
    gguf = _gguf()
    q = gguf.GGMLQuantizationType
    if tensor_type not in MERGE_TYPES:
        raise MergeError(f"unknown merged tensor type {tensor_type!r}: one of {', '.join(MERGE_TYPES)}")
    if not base.is_file():
        raise MergeError(f"base model not found: {base}")
    if not adapter.is_file():
        raise MergeError(f"adapter not found: {adapter}")
    start = time.perf_counter()
    reader = gguf.GGUFReader(str(base))
    if _field(reader, gguf.Keys.General.TYPE) not in (None, "model"):
        raise MergeError(f"{base} is not a model GGUF")
    architecture = _field(reader, gguf.Keys.General.ARCHITECTURE)
    lora = _read_lora(adapter, architecture)
    directory = out.parent
    directory.mkdir(parents=True, exist_ok=True)
    base_size = base.stat().st_size
    need = base_size * (2.3 if tensor_type == "base" else 1.3)
    free = shutil.disk_usage(directory).free
    if free < need:
        raise MergeError(
            f"not enough disk space in {directory} to merge: {free / 1e6:.0f} MB free, about {need / 1e6:.0f} MB needed"
        )
    base_types = {t.name: t.tensor_type for t in reader.tensors}
    merged_type = {"base": q.F32, "q8_0": q.Q8_0, "f16": q.F16}[tensor_type]
    scale = _check_fits(reader, lora, gguf.GGML_QUANT_SIZES[merged_type][0], tensor_type)
    stem = out.name
    written, identity = _fresh_file(directory, stem)
    intermediate: tuple[Path, os.stat_result] | None = None
    try:
        if tensor_type == "base":
            intermediate = (written, identity)
            say(f"merge: {len(_active(lora))} adapted tensors -> float32 intermediate {written.name}")
            count = _write_merged(reader, lora, written, identity, merged_type, say)
            written, identity = _fresh_file(directory, stem)
            ftype = int(_field(reader, gguf.Keys.General.FILE_TYPE) or 0)
            say(
                f"merge: quantising the merged tensors back to the base's types (llama.cpp, file type {ftype})"
            )
            _quantize_like(
                intermediate[0], written, base_types, ftype, threads or max(1, (os.cpu_count() or 1))
            )
            if not _same_file(written, identity):
                raise MergeError(f"{written} was replaced while llama.cpp wrote it")
            _remove_own(*intermediate)
            intermediate = None
        else:
            say(f"merge: {len(_active(lora))} adapted tensors -> {tensor_type}")
            count = _write_merged(reader, lora, written, identity, merged_type, say)
        del reader
        types = gguf_tensor_types(written)
        expected = {name: t.name for name, t in base_types.items()}
        if tensor_type != "base":
            expected.update({name: merged_type.name for name in _active(lora)})
        if types != expected:
            wrong = [f"{n}: {types.get(n)} (wanted {w})" for n, w in expected.items() if types.get(n) != w]
            raise MergeError(
                f"the merged model's tensor types differ from the wanted ones: {'; '.join(wrong[:4])}"
            )
        written.replace(out)
    except BaseException:
        _remove_own(written, identity)
        raise
    finally:
        if intermediate is not None:
            _remove_own(*intermediate)
    return MergeResult(
        path=out,
        tensor_type=tensor_type,
        merged_tensors=count,
        scale=scale,
        bytes=out.stat().st_size,
        seconds=round(time.perf_counter() - start, 1),
        types_equal_base=all(types[n] == t.name for n, t in base_types.items()),
    )


def merge_adapter(
    name: str, tensor_type: str = DEFAULT_MERGE_TYPE, *, say: Say = lambda _: None, threads: int | None = None
) -> dict[str, Any]:
    """Merge registered adapter ``name`` into its base model, next to it; ``BASE+NAME`` then loads it.

    Returns the record kept in the adapter's ``adapter.json`` under ``merged``.
    """
    from codeloop.llm.adapters import file_sha256, merge_target, record_merge, registered_adapter
    from codeloop.llm.registry import embedded_base

    adapter = registered_adapter(name)
    base_path, base = embedded_base(adapter.base)
    out = merge_target(adapter)
    digest = file_sha256(adapter.path)
    result = merge_lora(base_path, adapter.path, out, tensor_type=tensor_type, say=say, threads=threads)
    record = record_merge(
        adapter,
        base,
        digest,
        {
            "type": result.tensor_type,
            "base_bytes": base_path.stat().st_size,
            "merged_tensors": result.merged_tensors,
            "scale": result.scale,
            "types_equal_base": result.types_equal_base,
            "seconds": result.seconds,
        },
    )
    say(f"merge: {name} merged into {base} -> {out} ({result.tensor_type}; use --model {base}+{name})")
    return record
