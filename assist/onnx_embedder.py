"""ONNX Runtime embedder: the same sentence-transformers model, exported once, run without torch.

On this class of machine it embeds an utterance about 3x faster than torch (int8: about 6x),
starts in a fraction of the time and uses far less memory (docs/performance.md). The export
runs once (``callassist model export``, done by ``make install``) into the cache folder;
pooling and normalisation follow the model's sentence-transformers configuration.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
QUANTIZATIONS = ("fp32", "int8")


class ExportError(RuntimeError):
    pass


def model_fingerprint(model_path: Path) -> str:
    """Changes when the model directory's weights or configuration change."""
    digest = hashlib.sha256(str(model_path.resolve()).encode())
    for name in ("config.json", "modules.json", "sentence_bert_config.json", "tokenizer.json"):
        file = model_path / name
        if file.exists():
            digest.update(file.read_bytes())
    for weights in sorted(model_path.glob("*.safetensors")) + sorted(model_path.glob("*.bin")):
        stat = weights.stat()
        digest.update(f"{weights.name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return digest.hexdigest()[:16]


def onnx_path(model_path: Path, cache_dir: Path, quantization: str = "fp32") -> Path:
    suffix = "" if quantization == "fp32" else f".{quantization}"
    return cache_dir / "models" / f"{model_path.name}-{model_fingerprint(model_path)}" / f"model{suffix}.onnx"


def export(model_path: Path, cache_dir: Path, quantization: str = "fp32") -> Path:
    """Export the transformer to ONNX (needs torch once); returns the .onnx path."""
    if quantization not in QUANTIZATIONS:
        raise ExportError(f"quantization must be one of {QUANTIZATIONS}")
    target = onnx_path(model_path, cache_dir, quantization)
    if target.exists():
        return target
    fp32 = onnx_path(model_path, cache_dir, "fp32")
    if not fp32.exists():
        _export_fp32(model_path, fp32)
    if quantization == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = target.with_suffix(".tmp")
        quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8)
        tmp.replace(target)
    return target


def _export_fp32(model_path: Path, target: Path) -> None:
    import torch
    from transformers import AutoModel

    class Encoder(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state  # type: ignore[no-any-return]

    model = AutoModel.from_pretrained(str(model_path), local_files_only=True)
    model.eval()
    sample = torch.ones(1, 8, dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    with torch.no_grad():
        torch.onnx.export(
            Encoder(model),
            (sample, sample, torch.zeros_like(sample)),
            str(tmp),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={
                "input_ids": axes,
                "attention_mask": axes,
                "token_type_ids": axes,
                "last_hidden_state": axes,
            },
            opset_version=17,
            dynamo=False,
        )
    tmp.replace(target)
    log.info("exported %s to %s", model_path, target)


class OnnxEmbedder:
    def __init__(self, model_path: Path, onnx_file: Path, *, threads: int = 1) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        pooling = _pooling_mode(model_path)
        if pooling not in ("mean", "cls"):
            raise ExportError(f"{model_path}: pooling {pooling!r} is not supported by the ONNX embedder")
        self._pooling = pooling
        max_length = 256
        config = model_path / "sentence_bert_config.json"
        if config.exists():
            max_length = int(json.loads(config.read_text()).get("max_seq_length", max_length))
        tokenizer = Tokenizer.from_file(str(model_path / "tokenizer.json"))
        tokenizer.enable_truncation(max_length)
        tokenizer.no_padding()  # encode() pads each run to its own longest row
        self._tokenizer = tokenizer
        self._pad_id = tokenizer.token_to_id("[PAD]") or 0
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.name = f"onnx:{onnx_file.parent.name}/{onnx_file.name}"
        self.dim = int(self._encode_padded([tokenizer.encode("dimension probe").ids]).shape[1])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encoded = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i].ids))
        lengths = [len(encoded[i].ids) for i in order]
        for run in plan_batches(lengths, MAX_BATCH, RUN_OVERHEAD_TOKENS):
            members = order[run.start : run.stop]
            out[members] = self._encode_padded([encoded[i].ids for i in members])
        return out

    def _encode_padded(self, token_ids: list[list[int]]) -> np.ndarray:
        width = max(map(len, token_ids))
        ids = np.full((len(token_ids), width), self._pad_id, dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, tokens in enumerate(token_ids):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})[0]
        if self._pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.ascontiguousarray(pooled / np.clip(norms, 1e-12, None), dtype=np.float32)


# On CPU a run costs about its padded tokens (rows x longest row) plus a fixed overhead worth
# ~10 tokens (docs/performance.md). Padding a 20-token utterance to a 70-token neighbour
# would cost more than a run of its own.
MAX_BATCH = 16
RUN_OVERHEAD_TOKENS = 10


def plan_batches(lengths: Sequence[int], max_batch: int, overhead: int) -> list[range]:
    """Split token lengths sorted ascending into consecutive runs of at most ``max_batch``,
    minimising padded tokens plus ``overhead`` per run (exact, by dynamic programming)."""
    n = len(lengths)
    best = [0] * (n + 1)  # best[end]: cheapest cost of the first `end` texts
    cut = [0] * (n + 1)  # where that plan's last run starts
    for end in range(1, n + 1):
        best[end], cut[end] = min(
            (best[start] + overhead + (end - start) * lengths[end - 1], start)
            for start in range(max(0, end - max_batch), end)
        )
    runs = []
    end = n
    while end > 0:
        runs.append(range(cut[end], end))
        end = cut[end]
    return runs[::-1]


def _pooling_mode(model_path: Path) -> str:
    modules = model_path / "modules.json"
    if modules.exists():
        for module in json.loads(modules.read_text()):
            if module.get("type", "").endswith("Pooling"):
                config = model_path / module.get("path", "1_Pooling") / "config.json"
                if config.exists():
                    flags = json.loads(config.read_text())
                    if flags.get("pooling_mode_mean_tokens"):
                        return "mean"
                    if flags.get("pooling_mode_cls_token"):
                        return "cls"
                    return "other"
    return "mean"
