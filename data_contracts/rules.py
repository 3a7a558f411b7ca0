"""Named business rules: built-in Great Expectations expectations under our own names.

Each rule is a subclass, the way GX documents customised expectations, so a failure names
the rule ("TextIsPresent"), not a generic expectation type. Columns, sets and conditions are
passed where the suites are built (suites.py): GX drops class-level defaults from the stored
configuration, and Data Docs would then not show them.
"""

from __future__ import annotations

import great_expectations as gx

E = gx.expectations


class RowsHaveTheRowSchema(E.ExpectTableColumnsToMatchOrderedList):
    description: str = "Rows carry exactly the columns of schemas/rows.py, in order"


class IdIsPresent(E.ExpectColumnValuesToNotBeNull):
    description: str = "Every row has an id"


class IdsAreUnique(E.ExpectColumnValuesToBeUnique):
    description: str = "Every row id is unique"


class TextIsPresent(E.ExpectColumnValuesToNotBeNull):
    description: str = "Every row has a text"


class TextIsNotBlank(E.ExpectColumnValueLengthsToBeBetween):
    description: str = "No text is empty"


class SplitIsKnown(E.ExpectColumnValuesToBeInSet):
    description: str = "split is labeled, unlabeled or eval"


class OriginIsKnown(E.ExpectColumnValuesToBeInSet):
    description: str = "origin is original, augmented or pseudo_labeled"


class LabelIsInLabelSet(E.ExpectColumnValuesToBeInSet):
    description: str = "Every label is a class name of the configured label set"


class LabeledRowsHaveALabel(E.ExpectColumnValuesToNotBeNull):
    description: str = "Labeled and eval rows have a label"


class TextLengthWithinBounds(E.ExpectColumnValueLengthsToBeBetween):
    description: str = "Non-eval texts respect the configured length bounds"


class NoRowDuplicatesAnEvalRow(E.ExpectColumnValuesToBeInSet):
    description: str = "No labeled or unlabeled row is an exact or near duplicate of an eval row"


class EvalRowsAreUnchanged(E.ExpectColumnValuesToBeInSet):
    description: str = "Eval rows pass through with the id and text they had at ingest"


class RowsAreAccountedFor(E.ExpectTableRowCountToEqual):
    description: str = "rows in = rows out + rows rejected"


class RejectsHaveAReason(E.ExpectColumnValuesToNotBeNull):
    description: str = "Every rejected row says why"


class NoEvalRowIsRejected(E.ExpectColumnValuesToNotBeInSet):
    description: str = "Stages never drop eval rows"


class OpIsKnown(E.ExpectColumnValuesToBeInSet):
    description: str = "Every synthetic row names the augmenter or rule that made it"


class AugmentedRowsHaveALabeledParent(E.ExpectColumnValuesToBeInSet):
    description: str = "Every augmented row's parent is a labeled original row"


class AugmentedRowsKeepTheirParentsLabel(E.ExpectColumnValuesToBeInSet):
    description: str = "Every augmented row carries its parent's label"


class AugmentedRowsKeepProtectedTerms(E.ExpectColumnValuesToBeInSet):
    description: str = "The protected domain terms of a parent survive in its augmented children"


class AugmentedRowsHaveASimilarity(E.ExpectColumnValuesToNotBeNull):
    description: str = "Every augmented row carries its similarity to its parent"


class SyntheticRowsHaveADomainScore(E.ExpectColumnValuesToNotBeNull):
    description: str = "Every non-eval row carries a domain relevance score"


class SyntheticRowsHaveEveryCheckScore(E.ExpectColumnValuesToNotBeNull):
    description: str = "Every synthetic row has a score from every enabled adversarial-validation check"
