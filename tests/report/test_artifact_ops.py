"""The report's per-artifact block reads each .tflite of the run as ``edgekit inspect`` does."""
from __future__ import annotations


def test_the_int8_artifact_block_names_its_ops_and_input_quantization(trained_small, digits, tmp_path):
    from edgekit.export.convert import to_tflite
    from edgekit.models import inspect_artifact
    from edgekit.report.artifact_ops import artifact_ops_blocks

    model, _ = trained_small
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "model_int8.tflite").write_bytes(to_tflite(model, "int8", digits.representative(50)))
    (tmp_path / "broken.tflite").write_bytes(b"TFL3 not a model")
    arts = [{"path": "export/model_int8.tflite", "target": "tflite-int8"}, {"path": "broken.tflite"},
            {"path": "history.json"}]
    blocks = artifact_ops_blocks(arts, tmp_path)
    assert len(blocks) == 1  # the unreadable file and the JSON are left out
    r = inspect_artifact(tmp_path / "export" / "model_int8.tflite")
    rows = dict(blocks[0].table.rows)
    assert blocks[0].summary.startswith(f"export/model_int8.tflite: {sum(r['op_counts'].values())} ops")
    assert "CONV_2D 2" in rows["ops"] and rows["MACs per image"] == f"{r['macs']:,}"
    scale = r["inputs"][0]["quantization"]["scale"][0]
    assert f"scale {scale:.6g}, zero point -128" in rows["input"] and "int8" in rows["input"]
    assert "Edge TPU" not in rows  # a dynamic-batch file is not the one compiled for the Edge TPU
