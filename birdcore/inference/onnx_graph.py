"""`export_onnx`: the one way a torch module becomes an ONNX graph here (CNN runs, BirdNET heads)."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path


def export_onnx(module, example, path: str | Path, input_name: str, output_names: list[str],
                dynamic: dict[int, tuple[str, int, int]] | None = None) -> Path:
    """Export `module(example)` to ONNX at `path` with the dynamo exporter; the one exporter here.

    `dynamic`: input axis → (name, min, max), e.g. {0: ("batch", 1, 4096)}. The dynamo exporter is
    used because the legacy TorchScript one cannot export the front end's `unfold` with a dynamic
    length. The wrapper names the input, so `dynamic_shapes` can refer to it.
    """
    import torch
    from torch import nn

    class _Named(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x)

    dims = {"x": {ax: torch.export.Dim(name, min=lo, max=hi) for ax, (name, lo, hi) in (dynamic or {}).items()}}
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # exporter progress lines and deprecation chatter
        program = torch.onnx.export(_Named(module.eval()), (example,), dynamo=True, dynamic_shapes=dims,
                                    input_names=[input_name], output_names=list(output_names))
    program.save(str(out))
    return out
