"""The CLI never replaces earlier results with nothing, and refuses a device the machine lacks."""

from __future__ import annotations

import pytest
import torch

from birdcore.cli import main
from birdcore.errors import ConfigError
from birdcore.models import resolve_device


def test_predict_where_every_input_fails_exits_2_and_keeps_earlier_results(tmp_path, capsys, real_data_dir):
    pytest.importorskip("ai_edge_litert", reason="the optional BirdNET extra is not installed")
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt junk that is no audio")
    out = tmp_path / "preds"
    out.mkdir()
    (out / "predictions.csv").write_text("earlier results\n")
    code = main(["predict", "--model", "birdnet", str(bad), "--out", str(out), "--species", "akiapo",
                 "--taxonomy", str(real_data_dir / "eBird_Taxonomy_v2021.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "none of the 1 input file(s) could be scored; nothing written" in err
    assert "broken.wav" in err  # the skipped file is named
    assert (out / "predictions.csv").read_text() == "earlier results\n"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_on_a_machine_without_it_is_a_config_error():
    with pytest.raises(ConfigError, match=r"device 'cuda': CUDA is not available on this machine"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"
