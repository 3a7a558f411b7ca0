"""flows.execution: the environment a local Dask cluster's workers are spawned with."""

import os

import pytest

from flows.execution import environment


def test_environment_sets_values_for_the_block_and_restores_them_even_after_an_error(monkeypatch):
    monkeypatch.setenv("PDAP_TEST_SET_BEFORE", "outer")
    monkeypatch.delenv("PDAP_TEST_UNSET_BEFORE", raising=False)
    with pytest.raises(RuntimeError):
        with environment({"PDAP_TEST_SET_BEFORE": "inner", "PDAP_TEST_UNSET_BEFORE": "1"}):
            assert (os.environ["PDAP_TEST_SET_BEFORE"], os.environ["PDAP_TEST_UNSET_BEFORE"]) == ("inner", "1")
            raise RuntimeError("the block fails")
    assert os.environ["PDAP_TEST_SET_BEFORE"] == "outer"
    assert "PDAP_TEST_UNSET_BEFORE" not in os.environ
