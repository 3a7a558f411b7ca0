"""The embedded trainers and the reference models, behind one interface.

Every trainer is `fit_predict(train_texts, train_labels, test_texts, labels, seed, families=None) -> predictions`.
`families` (one key per training row, `schemas.rows.family_keys`) makes rows that share a key (a
labeled row and its augmented children) count as one example: trainers whose `uses_families` is
True weigh each row 1 / family size and keep a family on one side of any internal split; the
others take None. Without families every row counts once.
Nothing here ever sees the eval labels; early stopping uses a slice of the training data.

- `head`: a class-balanced linear softmax on frozen embeddings of the active encoder, L-BFGS (seconds); its L2
  is chosen per run by cross-validation on the labeled rows (`choose_head_l2`) unless given.
- `finetune`: the encoder (MiniLM by default) fine-tuned end to end with a linear head on mean-pooled tokens (minutes).
- `setfit`: SetFit contrastive fine-tuning of the same encoder plus a logistic head.
- `tuned_lr`, `tfidf_lr`: scikit-learn logistic regression on the frozen embeddings or on TF-IDF
  features, C chosen by stratified cross-validation on the training rows (as a competent user would);
  `frozen_lr`: the same on embeddings with scikit-learn's default C=1.
"""

from __future__ import annotations

import copy
import hashlib
import tempfile
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from model_hooks.embedder import EmbeddingMode, get_embedder
from model_hooks.encoders import active_encoder


class Trainer(Protocol):
    name: str
    uses_families: bool

    def fit_predict(self, train_texts: list[str], train_labels: list[str], test_texts: list[str], labels: list[str], seed: int,
                    families: list[str] | None = None) -> list[str]: ...


def _seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _class_weights(targets: np.ndarray, n_classes: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Balanced class weights from the (weighted) class counts: every class carries the same total."""
    counts = np.bincount(targets, weights=weights, minlength=n_classes).astype(np.float64)
    return np.where(counts > 0, counts.sum() / (n_classes * np.where(counts > 0, counts, 1.0)), 0.0).astype(np.float32)


def _row_weights(weights: np.ndarray | None, n_rows: int) -> np.ndarray:
    if weights is None:
        return np.ones(n_rows, dtype=np.float32)
    weights = np.asarray(weights, dtype=np.float32)
    if weights.shape != (n_rows,) or not np.all(weights > 0):
        raise ValueError(f"weights must be {n_rows} positive numbers, one per training row")
    return weights


def _weighted_cross_entropy(logits, targets, row_weights, normaliser):
    """Cross-entropy summed with one weight per row (row weight x class weight), divided by `normaliser`."""
    import torch

    losses = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    return (row_weights * losses).sum() / normaliser


def _family_weights(families: list[str] | None) -> np.ndarray | None:
    from schemas.rows import weights_of_families

    return None if families is None else weights_of_families(families).astype(np.float32)


def linear_probabilities(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Softmax of a fitted linear layer (`HeadTrainer.fit_weights`) over the rows of `x`."""
    logits = np.asarray(x, dtype=np.float32) @ weight.T + bias
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


# The head's L2 candidates (l2 = 1 / C of logistic regression). Few rows of many classes want a weak
# penalty (C=10 and more), many noisy rows a stronger one; the grid spans both.
L2_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
_L2_CHOICES: dict[str, tuple[float, dict]] = {}


def stratified_folds(targets: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """A fold number per row: each class's rows dealt round-robin over the folds in a seeded order."""
    rng = np.random.default_rng(seed)
    folds = np.zeros(len(targets), dtype=np.int64)
    offset = 0
    for label in np.unique(targets):
        members = rng.permutation(np.flatnonzero(targets == label))
        folds[members] = (np.arange(len(members)) + offset) % n_folds
        offset += len(members)  # classes smaller than n_folds do not all fill fold 0
    return folds


def choose_head_l2(x: np.ndarray, train_labels: list[str], labels: list[str], seed: int, grid: tuple[float, ...] = L2_GRID) -> tuple[float, dict]:
    """The L2 of `grid` with the best out-of-fold macro-F1 on these rows (up to 5 stratified folds), and
    each candidate's score. Ties go to the stronger penalty. Cached per process by the rows' content."""
    from sklearn.metrics import f1_score

    key = hashlib.sha256(np.ascontiguousarray(x, dtype=np.float32).tobytes() + "\x1f".join(train_labels).encode() + repr((labels, seed, grid)).encode()).hexdigest()
    if key in _L2_CHOICES:
        return _L2_CHOICES[key]
    index = {label: position for position, label in enumerate(labels)}
    targets = np.asarray([index[label] for label in train_labels])
    n_folds = int(min(5, np.bincount(targets).max()))
    if n_folds < 2:
        return 1.0, {}
    folds = stratified_folds(targets, n_folds, seed)
    scores = {}
    for l2 in grid:
        predicted = np.zeros(len(targets), dtype=np.int64)
        for fold in range(n_folds):
            held = folds == fold
            weight, bias = HeadTrainer(l2=l2).fit_weights(x[~held], [train_labels[i] for i in np.flatnonzero(~held)], labels, seed)
            predicted[held] = linear_probabilities(x[held], weight, bias).argmax(axis=1)
        scores[l2] = round(float(f1_score(targets, predicted, labels=list(range(len(labels))), average="macro", zero_division=0)), 6)
    best = max(grid, key=lambda l2: (scores[l2], l2))
    _L2_CHOICES[key] = (best, scores)
    return best, scores


@dataclass
class HeadTrainer:
    """Linear softmax on frozen embeddings; class-balanced cross-entropy plus L2, solved by L-BFGS.

    The L2 penalty is `l2 / (2 * total weight)`, the mean-loss form of logistic regression with
    C = 1 / l2: the more (weighted) evidence, the weaker the pull towards zero. `l2 = None` chooses
    it by cross-validation on the training rows (`choose_head_l2`).
    """

    embedding_mode: EmbeddingMode = "truncate"
    l2: float | None = 1.0
    name: str = "head"
    uses_families: bool = True
    # Start L-BFGS from these (weight, bias) instead of zeros: a fit on nearly the same rows converges in
    # a few steps to the same optimum (the objective is strictly convex). `fitted` holds the last fit's.
    warm_start: tuple[np.ndarray, np.ndarray] | None = None
    fitted: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)

    def fit_predict(self, train_texts, train_labels, test_texts, labels, seed, families=None):
        probabilities = self.fit_predict_proba(train_texts, train_labels, test_texts, labels, seed, families)
        return [labels[i] for i in probabilities.argmax(axis=1)]

    def fit_predict_proba(self, train_texts, train_labels, test_texts, labels, seed, families=None) -> np.ndarray:
        """Class probabilities of `test_texts` (columns in `labels` order)."""
        embedder = get_embedder(self.embedding_mode)
        return self.fit_predict_proba_vectors(embedder.embed(train_texts), train_labels, embedder.embed(test_texts), labels, seed,
                                              _family_weights(families))

    def fit_predict_vectors(self, train_x: np.ndarray, train_labels, test_x: np.ndarray, labels, seed, weights=None) -> list[str]:
        probabilities = self.fit_predict_proba_vectors(train_x, train_labels, test_x, labels, seed, weights)
        return [labels[i] for i in probabilities.argmax(axis=1)]

    def fit_predict_proba_vectors(self, train_x: np.ndarray, train_labels, test_x: np.ndarray, labels, seed, weights=None) -> np.ndarray:
        """Class probabilities (columns in `labels` order) for `test_x`."""
        return linear_probabilities(test_x, *self.fit_weights(train_x, train_labels, labels, seed, weights))

    def fit_weights(self, train_x: np.ndarray, train_labels, labels, seed, weights=None) -> tuple[np.ndarray, np.ndarray]:
        """The fitted linear layer: weight (classes x dims) and bias, rows in `labels` order."""
        import torch

        _seed_everything(seed)
        index = {label: position for position, label in enumerate(labels)}
        targets = np.asarray([index[label] for label in train_labels])
        row_weights = _row_weights(weights, len(targets))
        l2 = self.l2 if self.l2 is not None else choose_head_l2(train_x, list(train_labels), list(labels), seed)[0]
        class_weights = _class_weights(targets, len(labels), row_weights)
        x = torch.from_numpy(np.ascontiguousarray(train_x, dtype=np.float32))
        y = torch.from_numpy(targets)
        combined = torch.from_numpy(row_weights * class_weights[targets])
        layer = torch.nn.Linear(x.shape[1], len(labels))
        torch.nn.init.zeros_(layer.weight)
        torch.nn.init.zeros_(layer.bias)
        if self.warm_start is not None and self.warm_start[0].shape == tuple(layer.weight.shape):
            with torch.no_grad():
                layer.weight.copy_(torch.from_numpy(self.warm_start[0]))
                layer.bias.copy_(torch.from_numpy(self.warm_start[1]))
        optimizer = torch.optim.LBFGS(layer.parameters(), lr=1.0, max_iter=500, tolerance_grad=1e-6, line_search_fn="strong_wolfe")
        penalty = l2 / (2 * float(row_weights.sum()))

        def closure():
            optimizer.zero_grad()
            loss = _weighted_cross_entropy(layer(x), y, combined, combined.sum()) + penalty * layer.weight.pow(2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        self.fitted = layer.weight.detach().numpy().copy(), layer.bias.detach().numpy().copy()
        return self.fitted


@dataclass
class FinetuneTrainer:
    """The active encoder fine-tuned end to end, started from a linear probe (LP-FT).

    The head is first fitted on the frozen, normalised embeddings (as `head` does), then body and head
    train together with a warm-up and linear decay. Starting from the probe keeps the first updates from
    wrecking the pretrained features, which matters with a few hundred examples. Early stopping uses
    macro-F1 on a stratified slice of the training data; the probe itself is the epoch-0 candidate.
    """

    epochs: int = 6
    batch_size: int = 16
    body_learning_rate: float = 2e-5
    head_learning_rate: float = 1e-4
    warmup_share: float = 0.1
    validation_share: float = 0.15
    patience: int = 2
    max_tokens: int | None = None  # None: the active encoder's word-piece limit
    name: str = "finetune"
    uses_families: bool = True

    def fit_predict(self, train_texts, train_labels, test_texts, labels, seed, families=None):
        import torch
        from transformers import AutoModel, AutoTokenizer

        _seed_everything(seed)
        encoder = active_encoder()
        max_tokens = self.max_tokens or encoder.max_tokens
        tokenizer = AutoTokenizer.from_pretrained(str(encoder.folder))
        body = AutoModel.from_pretrained(str(encoder.folder))
        model = _PooledClassifier(body, len(labels))
        index = {label: position for position, label in enumerate(labels)}
        targets = np.asarray([index[label] for label in train_labels])
        families = families if families is not None else [str(i) for i in range(len(targets))]
        fit_rows, check_rows = _stratified_family_split(targets, families, self.validation_share, seed)
        row_weights = _family_weights(families)
        fit_texts = [train_texts[i] for i in fit_rows]
        check_texts = [train_texts[i] for i in check_rows]
        self._fit_probe(model, tokenizer, fit_texts, targets[fit_rows], len(labels), seed, row_weights[fit_rows], max_tokens)

        batches_per_epoch = max(1, len(fit_rows) // self.batch_size)
        optimizer = torch.optim.AdamW(
            [
                {"params": model.body.parameters(), "lr": self.body_learning_rate},
                {"params": model.head.parameters(), "lr": self.head_learning_rate},
            ],
            weight_decay=0.01,
        )
        scheduler = _warmup_linear_decay(optimizer, batches_per_epoch * self.epochs, self.warmup_share)
        combined = row_weights * _class_weights(targets[fit_rows], len(labels), row_weights[fit_rows])[targets]
        # A fixed normaliser (the mean weight per row of a batch), not each batch's own weight sum:
        # otherwise a batch of light children would pull as hard as a batch of originals.
        per_row = float(combined[fit_rows].mean())
        rng = np.random.default_rng(seed)
        best_state = copy.deepcopy(model.state_dict())
        best_score = _macro_f1(model, tokenizer, check_texts, targets[check_rows], len(labels), max_tokens)
        stale = 0
        for _ in range(self.epochs):
            model.train()
            for batch in np.array_split(rng.permutation(fit_rows), batches_per_epoch):
                encoded = tokenizer([train_texts[i] for i in batch], padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
                loss = _weighted_cross_entropy(model(**encoded), torch.from_numpy(targets[batch]), torch.from_numpy(combined[batch]),
                                               per_row * len(batch))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                scheduler.step()
            score = _macro_f1(model, tokenizer, check_texts, targets[check_rows], len(labels), max_tokens)
            if score > best_score:
                best_state, best_score, stale = copy.deepcopy(model.state_dict()), score, 0
            else:
                stale += 1
                if stale >= self.patience:
                    break
        model.load_state_dict(best_state)
        predicted = _predict(model, tokenizer, test_texts, max_tokens)
        return [labels[i] for i in predicted]

    def _fit_probe(self, model, tokenizer, texts, targets, n_classes, seed, weights, max_tokens: int) -> None:
        """Set the head to the linear probe fitted on the frozen body's pooled output."""
        import torch

        pooled = _pooled_outputs(model, tokenizer, texts, max_tokens)
        names = [str(i) for i in range(n_classes)]
        weight, bias = HeadTrainer().fit_weights(pooled, [names[t] for t in targets], names, seed, weights)
        with torch.no_grad():
            model.head.weight.copy_(torch.from_numpy(weight))
            model.head.bias.copy_(torch.from_numpy(bias))


def _no_families(trainer, families) -> None:
    if families is not None:
        raise ValueError(f"the {trainer.name} trainer does not use families; pass families=None")


def _warmup_linear_decay(optimizer, total_steps: int, warmup_share: float):
    import torch

    warmup = max(1, round(warmup_share * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class _PooledClassifier:
    """Mean-pooled transformer body and a linear head (built lazily to keep torch imports local)."""

    def __new__(cls, body, n_classes: int):
        import torch

        class PooledClassifier(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.body = body
                self.head = torch.nn.Linear(body.config.hidden_size, n_classes)

            def forward(self, input_ids, attention_mask, **_):
                hidden = self.body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
                return self.head(self.pool(hidden, attention_mask))

            @staticmethod
            def pool(hidden, attention_mask):
                mask = attention_mask.unsqueeze(-1).float()
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                return torch.nn.functional.normalize(pooled, dim=1)

        return PooledClassifier()


def _stratified_family_split(targets: np.ndarray, families: list[str], share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold out `share` of each class's families (at least one when the class has two or more), whole:
    a child of a held-out row in the fitted rows would make the check score a near copy."""
    rng = np.random.default_rng(seed)
    _, first_row, family_of_row = np.unique(np.asarray(families, dtype=str), return_index=True, return_inverse=True)
    held_families = []
    for label in np.unique(targets):
        members = rng.permutation(np.sort(first_row[np.unique(family_of_row[targets == label])]))
        if len(members) >= 2:
            held_families.extend(family_of_row[members[: max(1, round(share * len(members)))]].tolist())
    held_mask = np.isin(family_of_row, held_families)
    return np.flatnonzero(~held_mask), np.flatnonzero(held_mask)


def _batched(model, tokenizer, texts: list[str], max_tokens: int, compute, batch_size: int = 64) -> np.ndarray:
    """`compute(encoded, hidden)` over length-sorted batches (similar lengths pad less), in input order."""
    import torch

    model.eval()
    order = np.argsort([len(text) for text in texts], kind="stable")
    results = [None] * len(texts)
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            encoded = tokenizer([texts[i] for i in rows], padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
            for row, value in zip(rows, compute(encoded).numpy()):
                results[row] = value
    return np.stack(results) if results else np.empty((0,))


def _predict(model, tokenizer, texts: list[str], max_tokens: int) -> np.ndarray:
    return _batched(model, tokenizer, texts, max_tokens, lambda encoded: model(**encoded).argmax(dim=1))


def _pooled_outputs(model, tokenizer, texts: list[str], max_tokens: int) -> np.ndarray:
    def pooled(encoded):
        hidden = model.body(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]).last_hidden_state
        return model.pool(hidden, encoded["attention_mask"])

    return _batched(model, tokenizer, texts, max_tokens, pooled)


def _macro_f1(model, tokenizer, texts, targets, n_classes, max_tokens) -> float:
    from sklearn.metrics import f1_score

    if len(texts) == 0:
        return 0.0
    predicted = _predict(model, tokenizer, texts, max_tokens)
    return float(f1_score(targets, predicted, labels=list(range(n_classes)), average="macro", zero_division=0))


@dataclass
class SetFitTrainer:
    """SetFit on the active encoder: contrastive pairs, then a logistic-regression head."""

    epochs: int = 1
    iterations: int = 10
    batch_size: int = 16
    max_pairs: int | None = None  # contrastive pairs at most: the same body-training budget for any data size
    name: str = "setfit"
    uses_families: bool = False  # SetFit draws its contrastive pairs uniformly from the rows

    def fit_predict(self, train_texts, train_labels, test_texts, labels, seed, families=None):
        _no_families(self, families)
        from datasets import Dataset
        from setfit import SetFitModel, Trainer, TrainingArguments

        _seed_everything(seed)
        encoder = active_encoder()
        model = SetFitModel.from_pretrained(str(encoder.folder), labels=list(labels), device="cpu")
        with tempfile.TemporaryDirectory(prefix="pdap-setfit-") as output:
            arguments = TrainingArguments(
                output_dir=output,
                batch_size=self.batch_size,
                num_epochs=self.epochs,
                num_iterations=self.iterations,
                max_steps=-1 if self.max_pairs is None else max(1, self.max_pairs // self.batch_size),
                max_length=encoder.max_tokens,
                seed=seed,
                report_to="none",
                show_progress_bar=False,
                save_strategy="no",
            )
            trainer = Trainer(model=model, args=arguments, train_dataset=Dataset.from_dict({"text": train_texts, "label": train_labels}))
            trainer.train()
        return [str(label) for label in model.predict(test_texts, batch_size=64, show_progress_bar=False)]


C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)


def _logistic_regression(x, train_labels, seed: int, tune: bool):
    """scikit-learn logistic regression fitted on `x`; with `tune`, C from `C_GRID` by stratified
    cross-validation (macro-F1, up to 5 folds) on these rows only."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    model = LogisticRegression(max_iter=2000, random_state=seed)
    smallest = min(np.unique(np.asarray(train_labels), return_counts=True)[1])
    if not tune or smallest < 2:
        return model.fit(x, train_labels)
    folds = StratifiedKFold(n_splits=int(min(5, smallest)), shuffle=True, random_state=seed)
    # GridSearchCV, not LogisticRegressionCV: the latter's macro-F1 scorer fails on two classes (scikit-learn 1.9)
    return GridSearchCV(model, {"C": list(C_GRID)}, cv=folds, scoring="f1_macro").fit(x, train_labels)


@dataclass
class TfidfLogisticRegression:
    """TF-IDF (words and word pairs, fitted on the training texts) + logistic regression, C tuned."""

    name: str = "tfidf_lr"
    uses_families: bool = False

    def fit_predict(self, train_texts, train_labels, test_texts, labels, seed, families=None):
        _no_families(self, families)
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1)
        model = _logistic_regression(vectorizer.fit_transform(train_texts), train_labels, seed, tune=True)
        return model.predict(vectorizer.transform(test_texts)).tolist()


@dataclass
class FrozenLogisticRegression:
    """Logistic regression on the frozen sentence embeddings: C tuned (`tuned_lr`) or C=1 (`frozen_lr`)."""

    embedding_mode: EmbeddingMode = "truncate"
    tune: bool = False
    name: str = "frozen_lr"
    uses_families: bool = False

    def fit_predict(self, train_texts, train_labels, test_texts, labels, seed, families=None):
        _no_families(self, families)
        embedder = get_embedder(self.embedding_mode)
        return self.fit_predict_vectors(embedder.embed(train_texts), train_labels, embedder.embed(test_texts), labels, seed)

    def fit_predict_vectors(self, train_x: np.ndarray, train_labels, test_x: np.ndarray, labels, seed) -> list[str]:
        return _logistic_regression(train_x, train_labels, seed, self.tune).predict(test_x).tolist()


TRAINERS = {"head": HeadTrainer, "finetune": FinetuneTrainer, "setfit": SetFitTrainer}
REFERENCES = {"tuned_lr": FrozenLogisticRegression, "tfidf_lr": TfidfLogisticRegression, "frozen_lr": FrozenLogisticRegression,
              "setfit": SetFitTrainer}


def make_trainer(name: str, embedding_mode: EmbeddingMode = "truncate", setfit_max_pairs: int | None = None,
                 head_l2: float | None = None) -> Trainer:
    """A trainer or reference model by name; embedding-based ones use `embedding_mode`; `head_l2` is the
    head's L2 (None: chosen by cross-validation on each training set)."""
    factory = TRAINERS.get(name) or REFERENCES.get(name)
    if factory is None:
        raise ValueError(f"unknown trainer {name!r}; choose from {sorted(set(TRAINERS) | set(REFERENCES))}")
    if factory is HeadTrainer:
        return factory(embedding_mode=embedding_mode, l2=head_l2)
    if factory is FrozenLogisticRegression:
        return factory(embedding_mode=embedding_mode, tune=name == "tuned_lr", name=name)
    if factory is SetFitTrainer:
        return factory(max_pairs=setfit_max_pairs)
    return factory()
