"""The one adapter between Arrow tables and Great Expectations, and the failure message.

A run folder gets one ephemeral GX context whose Data Docs site writes into
`<run>/data_docs/`. A failed rule raises `ContractViolation` naming the boundary, the rule and
example rows; nothing is caught and printed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

_SITE = "run_site"
_EXAMPLES = 5


class ContractViolation(RuntimeError):
    """A data contract failed at a stage boundary."""

    def __init__(self, boundary: str, failures: list[dict]):
        self.boundary = boundary
        self.failures = failures
        super().__init__(f"data contract failed at boundary {boundary}: " + " | ".join(_describe(f) for f in failures))


def _describe(failure: dict) -> str:
    text = f"rule {failure['rule']} ({failure['description']})"
    if failure.get("unexpected_count") is not None:
        text += f": {failure['unexpected_count']} of {failure['element_count']} rows break it"
    if failure.get("observed") is not None:
        text += f": observed {failure['observed']}, expected {failure['expected']}"
    if failure.get("examples"):
        text += f"; examples: {json.dumps(failure['examples'], default=str)}"
    if failure.get("error"):
        text += f"; error: {failure['error']}"
    return text


@dataclass
class ContractReport:
    boundary: str
    success: bool
    rules: list[dict] = field(default_factory=list)
    data_docs: str | None = None

    def as_dict(self) -> dict:
        return {"boundary": self.boundary, "success": self.success, "rules": self.rules, "data_docs": self.data_docs}

    def raise_for_failures(self) -> None:
        failures = [rule for rule in self.rules if not rule["success"]]
        if failures:
            raise ContractViolation(self.boundary, failures)


def to_frame(table: pa.Table):
    """Arrow -> the pandas frame GX validates. The only conversion for GX in the project."""
    return table.to_pandas()


class ContractValidator:
    """Validates tables of one run and renders their results into the run's Data Docs."""

    def __init__(self, data_docs_dir: Path):
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.data_docs_dir = Path(data_docs_dir).resolve()
        self._gx = gx
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.context.delete_data_docs_site("local_site")  # the default site writes to a random temp dir
        self.context.add_data_docs_site(
            site_name=_SITE,
            site_config={
                "class_name": "SiteBuilder",
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(self.data_docs_dir)},
            },
        )
        self._batches = self.context.data_sources.add_pandas("pdap").add_dataframe_asset("rows").add_batch_definition_whole_dataframe("all")

    def validate(self, suite_name: str, table: pa.Table, expectations: list) -> ContractReport:
        """Run `expectations` on `table`; return a report (raise_for_failures() stops the flow)."""
        from great_expectations.checkpoint import UpdateDataDocsAction

        gx = self._gx
        suite = self.context.suites.add_or_update(gx.ExpectationSuite(name=suite_name, expectations=list(expectations)))
        definition = self.context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=suite_name, data=self._batches, suite=suite)
        )
        checkpoint = self.context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=suite_name,
                validation_definitions=[definition],
                actions=[UpdateDataDocsAction(name="data_docs", site_names=[_SITE])],
                result_format={"result_format": "SUMMARY", "unexpected_index_column_names": ["id"], "partial_unexpected_count": _EXAMPLES},
            )
        )
        result = checkpoint.run(batch_parameters={"dataframe": to_frame(table)})
        validation = next(iter(result.run_results.values()))
        rules = sorted((_rule_summary(r) for r in validation.results), key=lambda rule: rule["rule"])
        return ContractReport(suite_name, bool(validation.success), rules, str(self.data_docs_dir / "index.html"))


def _clean(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _rule_summary(result) -> dict:
    rule = result.expectation_config.to_domain_obj()
    details = result.result or {}
    summary = {
        "rule": type(rule).__name__,
        "description": rule.description,
        "column": getattr(rule, "column", None),
        "success": bool(result.success),
        "unexpected_count": details.get("unexpected_count"),
        "element_count": details.get("element_count"),
    }
    if "observed_value" in details:
        summary["observed"] = details["observed_value"]
        summary["expected"] = getattr(rule, "value", None) or getattr(rule, "column_list", None)
    if not result.success:
        summary["examples"] = [
            {key: _clean(value) for key, value in row.items()} if isinstance(row, dict) else _clean(row)
            for row in (details.get("partial_unexpected_index_list") or details.get("partial_unexpected_list") or [])
        ][:_EXAMPLES]
        if not details:
            errors = [info.get("exception_message") for info in (result.exception_info or {}).values() if isinstance(info, dict)]
            summary["error"] = "; ".join(filter(None, errors))[:500] or "the rule could not be evaluated"
    return summary
