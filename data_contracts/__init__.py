"""Great Expectations data contracts, one suite per stage boundary."""

from data_contracts.validate import ContractViolation

__all__ = ["ContractViolation"]
