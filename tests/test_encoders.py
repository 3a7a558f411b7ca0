"""Bring your own sentence encoder: resolving folders, the active encoder, per-encoder caches, exports and the choice.

Every test builds on a tiny 2-layer BERT folder (tests/encoder_folders.py), made offline. ONNX exports go to a
temporary folder and embeddings to none or a temporary cache: nothing lands in the project's caches.
"""

from __future__ import annotations

import os
import json
import shutil
import sqlite3

import numpy as np
import pytest
from encoder_folders import build_tiny_encoder

from experiments import encoder_choice
from experiments.encoder_choice import choose_encoder
from flows.cli import encoder_overrides
from flows.config import ConfigError, RunConfig
from model_hooks import embedder, encoders, onnx_export
from model_hooks.bf16_encoder import native_bf16_cpu
from model_hooks.embedder import Embedder, embedding_work, get_embedder
from model_hooks.encoders import ENCODER_VARIABLE, EncoderFolderError, active_encoder, resolve_encoder, use_encoder
from model_hooks.locations import ResourceMissing

TOPIC_WORDS = {  # one word a row: only an encoder that knows what words mean generalises to the held-out ones
    "sport": "football tennis match goal team race runner stadium",
    "cooking": "sauce garlic bake bread oven butter soup recipe",
    "finance": "bank interest stock market bond profit inflation loan",
}
TEXTS = [
    "Aspirin reduced the risk of myocardial infarction in a randomised trial of 2,000 adults.",
    "short",
    "",
    " ".join(["Chronic kidney disease progressed in patients with poorly controlled hypertension."] * 12),  # > 128 pieces
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_encoder(tmp_path_factory.mktemp("encoders") / "tiny")


@pytest.fixture(scope="module")
def cls_tiny(tmp_path_factory):
    return build_tiny_encoder(tmp_path_factory.mktemp("encoders") / "tiny-cls", pooling="cls")


@pytest.fixture(autouse=True)
def onnx_dir(tmp_path, monkeypatch):
    """Exports of this test go to its own folder."""
    folder = tmp_path / "onnx"
    monkeypatch.setattr(onnx_export, "ONNX_DIR", folder)
    return folder


@pytest.fixture
def fresh_resolve():
    resolve_encoder.cache_clear()
    yield
    resolve_encoder.cache_clear()


def reference_vectors(folder, texts) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu").encode(texts, normalize_embeddings=True)


def one_word_rows(per_class: int) -> tuple[list[str], list[str]]:
    rows = [(word, label) for label, words in TOPIC_WORDS.items() for word in words.split()[:per_class]]
    return [text for text, _ in rows], [label for _, label in rows]


# ---------------------------------------------------------------- resolving


def test_minilm_resolves_to_the_bundled_model():
    minilm = resolve_encoder("minilm")
    assert (minilm.name, minilm.identity, minilm.dimensions, minilm.max_tokens) == ("minilm", "all-MiniLM-L6-v2", 384, 256)
    assert minilm.mean_pooled and minilm.fast_backends and minilm.bundled


def test_a_tiny_folder_resolves_and_loads_in_sentence_transformers(tiny):
    from sentence_transformers import SentenceTransformer

    encoder = resolve_encoder(str(tiny))
    assert (encoder.dimensions, encoder.max_tokens, encoder.folder) == (32, 128, tiny.resolve())
    assert encoder.name == f"tiny-{encoder.identity.removeprefix('tiny-')[:8]}", "the folder's name and 8 digits of its digest"
    assert encoder.mean_pooled and not encoder.bundled
    assert encoder.identity.startswith("tiny-") and len(encoder.identity) > len("tiny-") + 8  # carries a content hash
    model = SentenceTransformer(str(tiny), device="cpu")
    assert model.encode(["a sentence"]).shape == (1, 32)


def test_the_identity_follows_the_folder_content_not_its_place(tiny, tmp_path):
    identity = resolve_encoder(str(tiny)).identity
    rebuilt = build_tiny_encoder(tmp_path / "rebuilt" / "tiny")
    assert (rebuilt / "model.safetensors").read_bytes() == (tiny / "model.safetensors").read_bytes(), "the build is deterministic"
    copy = shutil.copytree(tiny, tmp_path / "copy" / "tiny")
    assert resolve_encoder(str(rebuilt)).identity == identity
    assert resolve_encoder(str(copy)).identity == identity
    changed = shutil.copytree(tiny, tmp_path / "changed" / "tiny")
    weights = bytearray((changed / "model.safetensors").read_bytes())
    weights[-1] ^= 0x01  # one bit of the last tensor's data
    (changed / "model.safetensors").write_bytes(bytes(weights))
    assert resolve_encoder(str(changed)).identity != identity
    assert resolve_encoder(str(changed)).name != resolve_encoder(str(tiny)).name, "two folders of one name never share records"


# ---------------------------------------------------------------- errors


def broken_copy(tiny, tmp_path, remove: str | None = None, replace: tuple[str, str] | None = None):
    folder = shutil.copytree(tiny, tmp_path / "broken")
    if remove:
        (folder / remove).unlink()
    if replace:
        (folder / replace[0]).write_text(replace[1], encoding="utf-8")
    return folder


@pytest.mark.parametrize("remove, replace, names, problem", [
    (None, None, "", "not found"),
    ("config.json", None, "", "needs config.json"),
    ("model.safetensors", None, "", "no model weights"),
    (None, ("modules.json", "[{not json"), "modules.json", "not readable JSON"),
    (None, ("modules.json", '["0_Transformer"]'), "modules.json", "expected a list of sentence-transformers modules"),
    (None, ("config.json", '{"hidden_size": 32}'), "config.json", "no model_type"),
    (None, ("config.json", '{"model_type": "bert", "max_position_embeddings": "long"}'), "config.json", "max_position_embeddings must be an integer"),
    (None, ("config.json", "[1, 2]"), "config.json", "expected a JSON object"),
])
def test_an_unusable_folder_is_an_error_naming_its_path(tiny, tmp_path, remove, replace, names, problem):
    folder = tmp_path / "nowhere" if remove is None and replace is None else broken_copy(tiny, tmp_path, remove, replace)
    with pytest.raises(EncoderFolderError) as raised:
        resolve_encoder(str(folder))
    assert isinstance(raised.value, ResourceMissing)  # the CLI's exit code 2
    assert str(folder / names if names else folder) in str(raised.value) and problem in str(raised.value)


def test_a_dense_layer_sets_the_dimensions_and_rules_out_the_fast_backends(tiny, tmp_path):
    folder = shutil.copytree(tiny, tmp_path / "dense")
    modules = json.loads((folder / "modules.json").read_text())
    modules.append({"idx": len(modules), "name": str(len(modules)), "path": "3_Dense", "type": "sentence_transformers.models.Dense"})
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "3_Dense").mkdir()
    (folder / "3_Dense" / "config.json").write_text(json.dumps({"in_features": 32, "out_features": 16, "bias": True}))
    encoder = resolve_encoder(str(folder))
    assert (encoder.dimensions, encoder.fast_backends) == (16, False)


def test_mpnet_not_installed_names_its_install_command(tmp_path, monkeypatch, fresh_resolve):
    monkeypatch.setattr(encoders, "ENCODER_DIR", tmp_path / "empty")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResourceMissing, match="make encoder-mpnet") as raised:
        resolve_encoder("mpnet")
    assert str(tmp_path / "empty" / encoders.MPNET_FOLDER) in str(raised.value)


# ---------------------------------------------------------------- the active encoder


def test_use_encoder_sets_the_variable_and_restores_it(tiny, monkeypatch):
    monkeypatch.chdir(tiny.parent)
    monkeypatch.setenv(ENCODER_VARIABLE, "minilm")
    with use_encoder("tiny") as encoder:  # relative to the working directory, stored absolute for worker processes
        assert os.environ[ENCODER_VARIABLE] == str(tiny.resolve()) and encoder.name.startswith("tiny-")
        assert active_encoder() == encoder
        with use_encoder("minilm"):
            assert active_encoder().name == "minilm"
        assert active_encoder() == encoder
    assert os.environ[ENCODER_VARIABLE] == "minilm" and active_encoder().name == "minilm"

    monkeypatch.delenv(ENCODER_VARIABLE)
    with pytest.raises(KeyError, match="inside"):
        with use_encoder(str(tiny)):
            raise KeyError("inside")
    assert ENCODER_VARIABLE not in os.environ and active_encoder().name == "minilm"
    with pytest.raises(EncoderFolderError):
        with use_encoder(str(tiny.parent / "missing")):
            pytest.fail("the block must not run with an unusable encoder")
    assert ENCODER_VARIABLE not in os.environ


# ---------------------------------------------------------------- embedding


def test_the_embedding_cache_never_mixes_encoders(tiny, tmp_path):
    cache = tmp_path / "cache"
    minilm, small = resolve_encoder("minilm"), resolve_encoder(str(tiny))
    first = Embedder(cache_dir=cache, backend="torch", encoder=minilm)
    second = Embedder(cache_dir=cache, backend="torch", encoder=small)
    assert first.key(TEXTS[0]) != second.key(TEXTS[0]) and (first.dimensions, second.dimensions) == (384, 32)
    assert first.embed(TEXTS[:1]).shape == (1, 384)
    assert second.embed(TEXTS[:1]).shape == (1, 32) and second.computed == 1
    again = Embedder(cache_dir=cache, backend="torch", encoder=small)
    assert again.embed(TEXTS[:1]).shape == (1, 32) and again.computed == 0  # its own vector, from the cache
    with sqlite3.connect(cache / "embeddings.sqlite") as connection:
        sizes = sorted(size for (size,) in connection.execute("SELECT length(vector) FROM vectors"))
    assert sizes == [32 * 4, 384 * 4]


def test_a_mean_pooled_folder_is_exported_on_first_use_and_matches_sentence_transformers(tiny, onnx_dir):
    encoder = resolve_encoder(str(tiny))
    assert len(embedder.tokenizer(encoder)(TEXTS[-1])["input_ids"]) > 128
    onnx = Embedder(cache_dir=None, backend="onnx", encoder=encoder)
    vectors = onnx.embed(TEXTS)
    assert onnx.backend == "onnx" and vectors.shape == (len(TEXTS), 32) and vectors.dtype == np.float32
    assert [path.name for path in onnx_dir.iterdir()] == [f"{encoder.identity}.onnx"]
    reference = reference_vectors(tiny, TEXTS)
    assert np.abs(vectors - reference).max() < 1e-5
    assert np.abs(Embedder(cache_dir=None, backend="torch", encoder=encoder).embed(TEXTS) - reference).max() < 1e-6


@pytest.mark.skipif(not native_bf16_cpu(), reason="the CPU has no AMX-BF16")
def test_a_mean_pooled_folder_runs_on_the_bf16_backend(tiny):
    vectors = Embedder(cache_dir=None, backend="torch_bf16", encoder=resolve_encoder(str(tiny))).embed(TEXTS)
    cosines = (vectors * reference_vectors(tiny, TEXTS)).sum(axis=1)
    assert cosines.min() > 1 - 1e-3, cosines


def test_another_pooling_runs_on_sentence_transformers_whatever_the_backend(cls_tiny, onnx_dir):
    encoder = resolve_encoder(str(cls_tiny))
    assert not encoder.mean_pooled and not encoder.fast_backends and encoder.dimensions == 32
    asked_onnx = Embedder(cache_dir=None, backend="onnx", encoder=encoder)
    assert asked_onnx.backend == "torch"
    np.testing.assert_allclose(asked_onnx.embed(TEXTS), reference_vectors(cls_tiny, TEXTS), atol=1e-6)
    assert not onnx_dir.exists() or not any(onnx_dir.iterdir()), "nothing is exported for it"


def test_embedding_work_counts_per_encoder_since_a_mark(tiny):
    encoder = resolve_encoder(str(tiny))
    shared = get_embedder("truncate", cache_dir=None, backend="torch", encoder=encoder)
    shared.embed(["warm up the shared embedder"])
    before = embedding_work()
    tiny_name = resolve_encoder(str(tiny)).name
    assert before[tiny_name]["texts"] >= 1
    shared.embed(["one text counted", "and another"])
    work = embedding_work(since=before)
    assert work[tiny_name]["texts"] == 2 and work[tiny_name]["seconds"] >= 0
    assert all(totals["texts"] == 0 for name, totals in work.items() if name != tiny_name)
    assert embedding_work()[tiny_name]["texts"] == before[tiny_name]["texts"] + 2


# ---------------------------------------------------------------- choosing


@pytest.fixture
def uncached_choice(monkeypatch):
    """choose_encoder embeds with the active encoder, without the project's disk cache."""
    def uncached(mode="truncate"):
        return get_embedder(mode, cache_dir=None, backend="torch")

    monkeypatch.setattr(encoder_choice, "get_embedder", uncached)


def test_the_encoder_with_the_better_inner_score_is_chosen(tiny, uncached_choice):
    texts, text_labels = one_word_rows(8)
    for specs in (["minilm", str(tiny)], [str(tiny), "minilm"]):  # minilm wins on its score, not by being listed first
        choice = choose_encoder(specs, texts, text_labels, list(TOPIC_WORDS), seed=0)
        assert (choice.spec, choice.name) == ("minilm", "minilm")
        tiny_name = resolve_encoder(str(tiny)).name
        assert set(choice.scores) == {"minilm", tiny_name} and choice.scores["minilm"] > choice.scores[tiny_name]
    record = choice.as_record()
    assert record["chosen"] == "minilm" and record["inner_macro_f1"] == choice.scores and record["rule"]


def test_rows_too_few_to_fold_go_to_the_first_listed(tiny, uncached_choice):
    texts, text_labels = one_word_rows(1)
    choice = choose_encoder([str(tiny), "minilm"], texts, text_labels, list(TOPIC_WORDS), seed=0)
    tiny_name = resolve_encoder(str(tiny)).name
    assert (choice.spec, choice.name) == (str(tiny), tiny_name)
    assert choice.scores == {tiny_name: None, "minilm": None}


# ---------------------------------------------------------------- configuration


def run_config(folder, model: str) -> RunConfig:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "run.yaml"
    path.write_text(f"name: t\ningest:\n  sources:\n    - path: in.csv\nembedding:\n  model: {model}\n", encoding="utf-8")
    return RunConfig.load(path)


def test_embedding_model_is_a_name_a_path_or_a_list(tmp_path, tiny):
    named = run_config(tmp_path, "minilm").embedding
    assert (named.models, named.label) == (["minilm"], "minilm")
    folder = str(shutil.copytree(tiny, tmp_path / "configs" / "encoders" / "tiny").resolve())
    tiny_name = resolve_encoder(folder).name
    relative = run_config(tmp_path / "configs", "encoders/tiny").embedding  # against the config file's folder
    assert (relative.model, relative.models, relative.label) == (folder, [folder], tiny_name)
    both = run_config(tmp_path / "configs", "[minilm, encoders/tiny]").embedding
    assert (both.models, both.label) == (["minilm", folder], f"minilm|{tiny_name}")
    assert RunConfig.load(tmp_path / "configs" / "run.yaml", encoder_overrides(["mpnet"])).embedding.label == "mpnet"


def test_a_duplicate_or_empty_model_is_a_config_error_naming_the_key(tmp_path):
    messages = []
    for model in ("[minilm, minilm]", "[]", "''"):
        with pytest.raises(ConfigError) as raised:
            run_config(tmp_path, model)
        messages.append(str(raised.value))
    assert "listed more than once" in messages[0]
    # the project's config errors name the dotted key (experiment.ks.0, augmentation.enabled: ...); EmbeddingConfig._named
    # (flows/config.py) is a section-level validator, so its errors read "embedding: Value error, model: ..."
    assert all("embedding.model" in message for message in messages), f"BUG: the key is not named embedding.model: {messages}"


def test_encoder_options_are_absolute_against_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert encoder_overrides(None) == {}
    assert encoder_overrides(["minilm"]) == {"embedding": {"model": "minilm"}}
    assert encoder_overrides(["minilm", "tiny"]) == {"embedding": {"model": ["minilm", str(tmp_path / "tiny")]}}


# ---------------------------------------------------------------- results files


def test_results_keep_each_encoder_apart_and_read_old_records_as_minilm(tmp_path):
    from experiments.report import merge_records, summarize

    def record(arm, seed, f1, **extra):
        return {"dataset": "d", "eval_split": "test", "trainer": "head", "embedding_mode": "truncate", "k": 10, "seed": seed,
                "arm": arm, "noise": "none", "macro_f1": f1, **extra}

    path = tmp_path / "experiment_d.jsonl"
    old = [record("raw", 0, 0.50), record("curated", 0, 0.55)]  # written before records named their encoder
    merge_records(path, old)
    merged = merge_records(path, [record("raw", 0, 0.60, encoder="mpnet"), record("curated", 0, 0.64, encoder="mpnet")])
    assert len(merged) == 4, "another encoder's cell replaces nothing"
    merged = merge_records(path, [record("raw", 0, 0.51, encoder="minilm"), record("curated", 0, 0.56, encoder="minilm")])
    assert sorted((r.get("encoder"), r["macro_f1"]) for r in merged) == [("minilm", 0.51), ("minilm", 0.56), ("mpnet", 0.60), ("mpnet", 0.64)]
    arms, _ = summarize(merged)
    assert {(row["embedding_mode"], row["arm"]): row["mean"] for row in arms} == {
        ("truncate", "raw"): 0.51, ("truncate", "curated"): 0.56, ("mpnet truncate", "raw"): 0.60, ("mpnet truncate", "curated"): 0.64}
