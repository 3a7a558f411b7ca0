import numpy as np
import pytest

from model_hooks import bf16_encoder, embedder, onnx_export
from model_hooks.bf16_encoder import native_bf16_cpu
from model_hooks.embedder import BACKENDS, Embedder, hardware_default_backend, sentence_model
from model_hooks.encoders import ENCODER_DIR, MPNET_FOLDER, resolve_encoder
from model_hooks.locations import ResourceMissing

TEXTS = [
    "Aspirin reduced the risk of myocardial infarction in a randomised trial of 2,000 adults.",
    "Colonoscopy found adenomatous polyps in 12% of the screened patients.",
    "short",
    "",
    " ".join(["Chronic kidney disease progressed in patients with poorly controlled hypertension."] * 40),  # > 256 pieces
]


needs_bf16_cpu = pytest.mark.skipif(not native_bf16_cpu(), reason="the CPU has no AMX-BF16")
# The closeness tests run on every bundled encoder installed here: mpnet only after `make encoder-mpnet` (never in CI).
ENCODERS = ["minilm", pytest.param("mpnet", marks=pytest.mark.skipif(not (ENCODER_DIR / MPNET_FOLDER / "model.safetensors").is_file(),
                                                                     reason="mpnet is not installed (make encoder-mpnet)"))]


def test_cache_keys_differ_by_backend(monkeypatch):
    monkeypatch.setattr(embedder, "native_bf16_cpu", lambda: True)  # keys need no model, so any CPU can build them
    keys = {Embedder(cache_dir=None, backend=backend).key(TEXTS[0]) for backend in BACKENDS}
    assert len(keys) == len(BACKENDS)


def _cpuinfo(tmp_path, flags: str):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: test cpu\nflags\t\t: fpu sse2 {flags}\n\nprocessor\t: 1\nflags\t\t: fpu sse2 {flags}\n")
    return path


def test_bf16_needs_the_amx_bf16_flag(tmp_path):
    assert native_bf16_cpu(_cpuinfo(tmp_path, "avx2 amx_tile amx_bf16 amx_int8"))
    assert not native_bf16_cpu(_cpuinfo(tmp_path, "avx2 avx512f avx512_bf16 amx_tile"))  # bf16 dot products without AMX: not measured
    assert not native_bf16_cpu(tmp_path / "no-such-file")


def test_default_backend_follows_the_cpu(monkeypatch):
    monkeypatch.setattr(embedder, "native_bf16_cpu", lambda: True)
    assert hardware_default_backend() == "torch_bf16"
    monkeypatch.setattr(embedder, "native_bf16_cpu", lambda: False)
    assert hardware_default_backend() == "onnx"


def test_bf16_backend_on_a_cpu_without_amx_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(embedder, "native_bf16_cpu", lambda: False)
    with pytest.raises(ValueError, match="AMX-BF16.*PDAP_EMBEDDING_BACKEND=onnx"):
        Embedder(cache_dir=None, backend="torch_bf16")


def test_unknown_backend_is_an_error():
    with pytest.raises(ValueError, match="backend"):
        Embedder(cache_dir=None, backend="tensorflow")


@pytest.mark.parametrize("backend", ["onnx", "onnx_int8"])
def test_missing_onnx_export_names_make_resources(tmp_path, monkeypatch, backend):
    monkeypatch.setattr(onnx_export, "ONNX_DIR", tmp_path / "empty")
    with pytest.raises(ResourceMissing, match="make resources") as raised:
        Embedder(cache_dir=None, backend=backend).embed(["any text"])
    assert onnx_export.onnx_model_file(backend).name in str(raised.value)


def test_each_onnx_backend_runs_its_own_file():
    assert onnx_export.onnx_model_file("onnx") != onnx_export.onnx_model_file("onnx_int8")
    assert onnx_export.onnx_model_file("onnx_int8").parent == onnx_export.onnx_model_file("onnx").parent


@pytest.mark.slow
@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("mode", ["truncate", "chunk_mean"])
def test_onnx_vectors_match_sentence_transformers(mode, encoder):
    encoder = resolve_encoder(encoder)
    onnx = Embedder(mode, cache_dir=None, backend="onnx", encoder=encoder).embed(TEXTS)
    torch = Embedder(mode, cache_dir=None, backend="torch", encoder=encoder).embed(TEXTS)
    assert onnx.dtype == np.float32 and onnx.shape == torch.shape == (len(TEXTS), encoder.dimensions)
    assert np.abs(onnx - torch).max() < 1e-5
    if mode == "truncate":
        reference = sentence_model(encoder).encode(TEXTS, normalize_embeddings=True)
        assert np.abs(onnx - reference).max() < 1e-5


@pytest.mark.slow
def test_backends_never_share_cached_vectors(tmp_path):
    Embedder(cache_dir=tmp_path, backend="onnx").embed(TEXTS[:2])
    torch = Embedder(cache_dir=tmp_path, backend="torch")
    torch.embed(TEXTS[:2])
    assert torch.computed == 2


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["truncate", "chunk_mean"])
@pytest.mark.parametrize(("backend", "gap_empty_text", "gap_texts"), [
    ("onnx_int8", 0.05, 0.02),  # the empty text ([CLS] [SEP] only) is the farthest, about 0.03
    pytest.param("torch_bf16", 1e-3, 1e-3, marks=needs_bf16_cpu),  # bf16 measures about 3e-5
])
@pytest.mark.parametrize("encoder", ENCODERS)
def test_reduced_precision_vectors_are_close_to_fp32(mode, backend, gap_empty_text, gap_texts, encoder):
    encoder = resolve_encoder(encoder)
    fp32 = Embedder(mode, cache_dir=None, backend="onnx", encoder=encoder).embed(TEXTS)
    other = Embedder(mode, cache_dir=None, backend=backend, encoder=encoder).embed(TEXTS)
    assert other.dtype == np.float32 and other.shape == fp32.shape
    assert np.allclose(np.linalg.norm(other, axis=1), 1.0, atol=1e-5)
    cosine = (other * fp32).sum(axis=1)
    assert cosine.min() > 1 - gap_empty_text
    assert all(c > 1 - gap_texts for c, text in zip(cosine, TEXTS) if text)
    assert not np.array_equal(other, fp32)  # the reduced-precision path ran


@needs_bf16_cpu
def test_bf16_leaves_the_callers_torch_threads_alone():
    import torch

    before = torch.get_num_threads()
    bf16_encoder.embed_token_ids([[101, 2023, 102], [101, 102]], resolve_encoder("minilm"))
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("backend", ["onnx", "onnx_int8"])
def test_texts_with_the_same_first_256_pieces_are_embedded_once(backend, monkeypatch):
    from model_hooks import onnx_encoder

    runs = []
    real = onnx_encoder.embed_token_ids
    monkeypatch.setattr(onnx_encoder, "embed_token_ids", lambda session, ids: runs.append(len(ids)) or real(session, ids))
    long_text = TEXTS[4]
    same_start = long_text + " Only the tail differs, past the 256th word piece."
    vectors = Embedder(cache_dir=None, backend=backend).embed([long_text, same_start, TEXTS[0]])
    assert runs == [2]  # three texts, two distinct piece sequences
    assert vectors[0].tobytes() == vectors[1].tobytes()
    assert vectors[0].tobytes() != vectors[2].tobytes()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnx", "onnx_int8", pytest.param("torch_bf16", marks=needs_bf16_cpu)])
def test_vectors_are_the_same_bytes_whatever_else_is_embedded(backend):
    embedder = Embedder(cache_dir=None, backend=backend)
    first = embedder.embed(TEXTS)
    assert first.tobytes() == embedder.embed(TEXTS).tobytes()
    assert first[1].tobytes() == embedder.embed([TEXTS[1]])[0].tobytes()
    assert first[::-1].tobytes() == Embedder(cache_dir=None, backend=backend).embed(TEXTS[::-1]).tobytes()
