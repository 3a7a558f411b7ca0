import numpy as np
import pytest

from model_hooks import onnx_export
from model_hooks.embedder import BACKENDS, Embedder, sentence_model
from model_hooks.resources import ResourceMissing

TEXTS = [
    "Aspirin reduced the risk of myocardial infarction in a randomised trial of 2,000 adults.",
    "Colonoscopy found adenomatous polyps in 12% of the screened patients.",
    "short",
    "",
    " ".join(["Chronic kidney disease progressed in patients with poorly controlled hypertension."] * 40),  # > 256 pieces
]


def test_cache_keys_differ_by_backend():
    keys = {Embedder(cache_dir=None, backend=backend).key(TEXTS[0]) for backend in BACKENDS}
    assert len(keys) == len(BACKENDS)


def test_unknown_backend_is_an_error():
    with pytest.raises(ValueError, match="backend"):
        Embedder(cache_dir=None, backend="tensorflow")


@pytest.mark.parametrize("backend", ["onnx", "onnx_int8"])
def test_missing_onnx_export_names_make_resources(tmp_path, monkeypatch, backend):
    monkeypatch.setattr(onnx_export, "ONNX_DIR", tmp_path / "empty")
    with pytest.raises(ResourceMissing, match="make resources") as raised:
        Embedder(cache_dir=None, backend=backend).embed(["any text"])
    assert onnx_export.MODEL_FILES[backend] in str(raised.value)


def test_each_onnx_backend_runs_its_own_file():
    assert onnx_export.onnx_model_file("onnx") != onnx_export.onnx_model_file("onnx_int8")
    assert onnx_export.onnx_model_file("onnx_int8").parent == onnx_export.onnx_model_file("onnx").parent


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["truncate", "chunk_mean"])
def test_onnx_vectors_match_sentence_transformers(mode):
    onnx = Embedder(mode, cache_dir=None, backend="onnx").embed(TEXTS)
    torch = Embedder(mode, cache_dir=None, backend="torch").embed(TEXTS)
    assert onnx.dtype == np.float32 and onnx.shape == torch.shape
    assert np.abs(onnx - torch).max() < 1e-5
    if mode == "truncate":
        reference = sentence_model().encode(TEXTS, normalize_embeddings=True)
        assert np.abs(onnx - reference).max() < 1e-5


@pytest.mark.slow
def test_onnx_vectors_are_the_same_bytes_whatever_else_is_embedded():
    embedder = Embedder(cache_dir=None, backend="onnx")
    first = embedder.embed(TEXTS)
    assert first.tobytes() == embedder.embed(TEXTS).tobytes()
    assert first[1].tobytes() == embedder.embed([TEXTS[1]])[0].tobytes()
    assert first[::-1].tobytes() == embedder.embed(TEXTS[::-1]).tobytes()


@pytest.mark.slow
def test_backends_never_share_cached_vectors(tmp_path):
    Embedder(cache_dir=tmp_path, backend="onnx").embed(TEXTS[:2])
    torch = Embedder(cache_dir=tmp_path, backend="torch")
    torch.embed(TEXTS[:2])
    assert torch.computed == 2


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["truncate", "chunk_mean"])
def test_int8_vectors_are_close_to_fp32(mode):
    fp32 = Embedder(mode, cache_dir=None, backend="onnx").embed(TEXTS)
    int8 = Embedder(mode, cache_dir=None, backend="onnx_int8").embed(TEXTS)
    assert int8.dtype == np.float32 and int8.shape == fp32.shape
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    cosine = (int8 * fp32).sum(axis=1)
    assert cosine.min() > 0.95  # the empty text ([CLS] [SEP] only) is the farthest, about 0.97
    assert all(c > 0.98 for c, text in zip(cosine, TEXTS) if text)
    assert not np.array_equal(int8, fp32)  # it is the quantised file that ran


@pytest.mark.slow
def test_int8_vectors_are_the_same_bytes_for_the_same_input():
    embedder = Embedder(cache_dir=None, backend="onnx_int8")
    first = embedder.embed(TEXTS)
    assert first.tobytes() == embedder.embed(TEXTS).tobytes()
    assert first[1].tobytes() == embedder.embed([TEXTS[1]])[0].tobytes()
    assert first[::-1].tobytes() == Embedder(cache_dir=None, backend="onnx_int8").embed(TEXTS[::-1]).tobytes()
