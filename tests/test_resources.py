import pytest

from model_hooks import resources


def test_missing_resources_name_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setattr(resources, "NLTK_DATA", tmp_path / "empty")
    assert "NLTK English stopwords" in resources.missing_resources()
    with pytest.raises(resources.ResourceMissing, match="make resources"):
        resources.ensure_nltk_data()


def test_installed_wordnet_and_stopwords_load_offline():
    resources.ensure_nltk_data()
    from nltk.corpus import stopwords, wordnet

    assert wordnet.synsets("pain")
    assert "the" in stopwords.words("english")


def test_install_is_idempotent():
    assert resources.install() == []


def test_an_unknown_encoder_is_a_usage_error_before_anything_is_installed(monkeypatch, capsys):
    from model_hooks import resources

    monkeypatch.setattr(resources, "install", lambda: pytest.fail("nothing may be installed for a bad command line"))
    assert resources.main(["resources", "install", "--encoder", "bert-large"]) == 2
    assert "--encoder mpnet" in capsys.readouterr().err
