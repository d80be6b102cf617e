"""A query-side linear adapter, the parametric baseline notebook 09 compares NUDGE with.

The approach of LlamaIndex's adapter fine-tuning engine (``EmbeddingAdapterFinetuneEngine`` in
``llama-index-finetuning``, its ``LinearLayer`` and ``MyMultipleNegativesRankingLoss``): the
document vectors stay as they are (nothing is re-embedded or re-indexed), and every query vector
is mapped by a learned ``d x d`` matrix ``W`` before the search, ``q' = W q``. What we follow
from it: ``W`` starts at the identity, has no bias, and is trained on (query, relevant passage)
pairs with the in-batch negatives loss ``cross_entropy(scale * cos(W q_i, p_j), i)``, scale 20,
with a linear warm-up over 10% of the steps. Where we differ, and why:

* numpy only: the gradient is written out (see :func:`softmax_loss_and_gradient`) and the
  optimiser is Adam in a few lines (LlamaIndex uses torch's AdamW);
* the step size is ``1e-3``, not LlamaIndex's default ``2e-5``: with ``2e-5``, batches of 10
  and its default single epoch, validation top-1 did not improve on the identity on either
  dataset of notebook 09 (so early stopping kept ``W = I``);
* after the warm-up the step size stays constant (LlamaIndex decays it linearly to 0), and the
  gradient is not clipped (LlamaIndex clips its norm at 1);
* every relevant passage of a query gives a pair (LlamaIndex takes the first only), and a
  passage in the batch that is also relevant to a query is not counted as its negative;
* the number of epochs is chosen on the validation queries (early stopping on top-1, the score
  NUDGE chooses its gamma with), and an optional ``l2`` penalty ``l2 * ||W - I||^2`` keeps ``W``
  near the identity.

``loss="squared"`` is the closed-form alternative: ridge regression of each training query onto
its passage, shrunk towards the identity, ``W = (P^T Q + a I)(Q^T Q + a I)^-1``, with ``a``
chosen on validation from ``alphas``. It recovers an exact linear map exactly; it is not a
ranking loss. Neither wins everywhere (validation top-1, bundled data: softmax 0.684, squared
0.677; SciFact: softmax 0.667, squared 0.704), so notebook 09 uses ``loss="auto"``: both are
fitted and validation keeps the better one, as it keeps NUDGE's gamma.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._validation import check_matrix, check_positive_int
from .estimator import NotFittedError
from .pairs import as_query_set, validate_query_set

__all__ = ["ALPHAS", "QueryAdapter", "softmax_loss_and_gradient"]

#: Default ridge strengths tried by ``loss="squared"`` (chosen on validation).
ALPHAS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
_LOSSES = ("softmax", "squared", "auto")


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def softmax_loss_and_gradient(
    w: np.ndarray, queries: np.ndarray, passages: np.ndarray, scale: float = 20.0, mask: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """In-batch negatives loss of the adapter ``w`` on one batch, and its gradient.

    ``z_i = w q_i``, ``u_i = z_i / ||z_i||``, ``S = scale * U P^T`` (cosine, passages unit);
    loss = mean over i of ``logsumexp(S_i) - S_ii`` (passage i is query i's positive, the
    other passages of the batch its negatives). Gradient: ``dS = (softmax(S) - I) / b``,
    ``dU = scale dS P``, ``dz_i = (du_i - (du_i . u_i) u_i) / ||z_i||``, ``dW = dZ^T Q``.

    Parameters
    ----------
    w : ndarray, shape (d, d)
    queries : ndarray, shape (b, d)
    passages : ndarray, shape (b, d)
        Unit rows; row i is relevant to query i.
    scale : float
    mask : ndarray of bool, shape (b, b), optional
        True where passage j must not count as a negative of query i (it is relevant too).

    Returns
    -------
    loss : float
    grad : ndarray, shape (d, d)
    """
    z = queries @ w.T
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    norms = np.where(norms > 0, norms, 1.0)
    u = z / norms
    s = scale * (u @ passages.T)
    if mask is not None:
        s = np.where(mask, -np.inf, s)
    s_max = s.max(axis=1, keepdims=True)
    p = np.exp(s - s_max)
    total = p.sum(axis=1, keepdims=True)
    b = s.shape[0]
    diag = np.arange(b)
    loss = float(np.mean(np.log(total[:, 0]) + s_max[:, 0] - s[diag, diag]))
    ds = p / total
    ds[diag, diag] -= 1.0
    ds /= b
    du = scale * (ds @ passages)
    dz = (du - np.einsum("ij,ij->i", du, u)[:, None] * u) / norms
    return loss, dz.T @ queries


class QueryAdapter:
    """A learned linear map applied to query vectors; document vectors stay untouched.

    Parameters
    ----------
    loss : {"softmax", "squared", "auto"}
        ``"softmax"``: LlamaIndex's in-batch negatives loss, Adam steps, epochs chosen on
        validation. ``"squared"``: closed-form ridge regression towards the identity.
        ``"auto"``: fit both, keep the one with the better validation top-1 (a tie: softmax).
    scale : float
        Softmax temperature (multiplies the cosine), 20 as in LlamaIndex and sentence-transformers.
    batch_size : int
        Pairs per step ("softmax").
    learning_rate : float
        Adam step size ("softmax").
    max_epochs : int
        Most passes over the training pairs ("softmax").
    patience : int
        Stop after this many epochs without a better validation score ("softmax").
    l2 : float
        Penalty ``l2 * ||W - I||_F^2`` ("softmax").
    alphas : sequence of float, optional
        Ridge strengths tried ("squared"); default :data:`ALPHAS`.
    seed : int
        Seed of the batch order.

    Attributes
    ----------
    loss_ : str
        The loss of the kept ``W``: "softmax" or "squared".
    matrix_ : ndarray of float64, shape (d, d)
        (trained in the dtype of the embeddings, float32 or float64)
        The map ``W``: an adapted query is ``W q``.
    val_score_ : float
        Validation top-1 of the chosen ``W``.
    history_ : dict
        "softmax": ``{"epoch", "train_loss", "val_hit@1"}`` lists (epoch 0 = the identity);
        "squared": ``{"alpha", "val_hit@1"}``.
    best_epoch_ : int
        "softmax": epochs of the chosen ``W`` (0: the identity was best).
    alpha_ : float
        "squared": the chosen ridge strength.
    n_features_in_, n_documents_ : int
    """

    def __init__(
        self,
        loss: str = "softmax",
        *,
        scale: float = 20.0,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        max_epochs: int = 40,
        patience: int = 5,
        l2: float = 0.0,
        alphas=None,
        seed: int = 0,
    ) -> None:
        self.loss = loss
        self.scale = scale
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_epochs = max_epochs
        self.patience = patience
        self.l2 = l2
        self.alphas = alphas
        self.seed = seed

    def get_params(self, deep: bool = True) -> dict:
        return {
            "loss": self.loss,
            "scale": self.scale,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "max_epochs": self.max_epochs,
            "patience": self.patience,
            "l2": self.l2,
            "alphas": self.alphas,
            "seed": self.seed,
        }

    def __repr__(self) -> str:
        default = QueryAdapter().get_params()
        changed = {k: v for k, v in self.get_params().items() if v != default[k]}
        return f"QueryAdapter({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        if self.loss not in _LOSSES:
            raise ValueError(f"loss must be 'softmax', 'squared' or 'auto', got {self.loss!r}")
        for name in ("scale", "learning_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        l2 = self.l2
        if isinstance(l2, bool) or not isinstance(l2, numbers.Real) or not np.isfinite(l2) or l2 < 0:
            raise ValueError(f"l2 must be a finite number >= 0, got {self.l2!r}")
        for name in ("batch_size", "max_epochs", "patience"):
            check_positive_int(getattr(self, name), name)
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be at least 2 (in-batch negatives), got {self.batch_size!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")

    def _alphas(self) -> np.ndarray:
        values = ALPHAS if self.alphas is None else self.alphas
        if isinstance(values, (str, bytes)):
            raise ValueError("alphas must be a sequence of numbers")
        try:
            grid = np.array(values, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise ValueError("alphas must be a sequence of numbers") from None
        if grid.size == 0 or not np.isfinite(grid).all() or (grid < 0).any():
            raise ValueError(f"alphas must be a non-empty sequence of finite numbers >= 0, got {values!r}")
        return grid

    # ------------------------------------------------------------------ fitting
    def fit(self, doc_embeddings: np.ndarray, train, val) -> QueryAdapter:
        """Learn ``W`` from the training pairs; choose epochs (or ridge strength) on ``val``.

        Parameters
        ----------
        doc_embeddings : ndarray, shape (N, d)
            Document vectors (L2-normalised internally; not modified, never changed).
        train, val : QuerySet, (embeddings, answers) tuple or {"q_embs", "q_ans_indx"} dict
            Training pairs, and validation queries used only to stop / choose.
        """
        self._check_params()
        e = check_matrix(doc_embeddings, "doc_embeddings")
        n_docs, d = e.shape
        tq, tflat, toff = validate_query_set(as_query_set(train, "train"), "train", n_docs=n_docs, dim=d, dtype=e.dtype)
        if val is None:
            raise ValueError("val is required to choose when to stop; pass validation queries")
        vq, vflat, voff = validate_query_set(as_query_set(val, "val"), "val", n_docs=n_docs, dim=d, dtype=e.dtype)
        # computed in the embeddings' own dtype: float32 halves the work of the many small products
        docs = _unit(e)
        q = tq
        pair_query = np.repeat(np.arange(q.shape[0]), np.diff(toff))
        relevant = np.zeros((q.shape[0], n_docs), dtype=bool)
        relevant[pair_query, tflat] = True
        vrel = np.zeros((vq.shape[0], n_docs), dtype=bool)
        vrel[np.repeat(np.arange(vq.shape[0]), np.diff(voff)), vflat] = True
        val_q = vq

        def val_hit1(w: np.ndarray) -> float:
            top = np.argmax(val_q @ w.T @ docs.T, axis=1)
            return float(vrel[np.arange(top.size), top].mean())

        if self.loss in ("softmax", "auto"):
            self._fit_softmax(q, docs, pair_query, tflat, relevant, val_hit1, d)
            self.loss_ = "softmax"
        if self.loss in ("squared", "auto"):
            kept = (self.matrix_, self.val_score_, self.history_) if self.loss == "auto" else None
            self._fit_squared(q[pair_query], docs[tflat], val_hit1, d)
            self.loss_ = "squared"
            if kept is not None and kept[1] >= self.val_score_:  # a tie keeps the softmax adapter
                self.matrix_, self.val_score_, self.history_ = kept
                self.loss_ = "softmax"
        self.n_features_in_, self.n_documents_ = d, n_docs
        return self

    def _fit_squared(self, q: np.ndarray, p: np.ndarray, val_hit1, d: int) -> None:
        alphas = self._alphas()
        q, p = q.astype(np.float64), p.astype(np.float64)
        qtq, ptq, eye = q.T @ q, p.T @ q, np.eye(d)
        scores, best, best_w = [], -1.0, eye
        for a in alphas:
            # W (Q^T Q + a I) = P^T Q + a I  (solve for W^T)
            w = np.linalg.solve(qtq + a * eye, (ptq + a * eye).T).T
            scores.append(val_hit1(w))
            if scores[-1] > best:
                best, best_w, self.alpha_ = scores[-1], w, float(a)
        self.matrix_ = best_w
        self.val_score_ = best
        self.history_ = {"alpha": alphas.tolist(), "val_hit@1": scores}

    def _fit_softmax(self, q, docs, pair_query, pair_doc, relevant, val_hit1, d: int) -> None:
        rng = np.random.default_rng(self.seed)
        n_pairs = pair_query.size
        steps_per_epoch = -(-n_pairs // self.batch_size)
        warmup = max(1, int(0.1 * steps_per_epoch * self.max_epochs))
        w, eye = np.eye(d, dtype=q.dtype), np.eye(d, dtype=q.dtype)
        m, v = np.zeros_like(w), np.zeros_like(w)
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        best, best_w, best_epoch, step = val_hit1(w), w.copy(), 0, 0
        history = {"epoch": [0], "train_loss": [float("nan")], "val_hit@1": [best]}
        for epoch in range(1, self.max_epochs + 1):
            order, total = rng.permutation(n_pairs), 0.0
            for start in range(0, n_pairs, self.batch_size):
                rows = order[start : start + self.batch_size]
                if rows.size < 2:
                    continue
                qi, di = pair_query[rows], pair_doc[rows]
                mask = relevant[qi][:, di]
                np.fill_diagonal(mask, False)
                loss, grad = softmax_loss_and_gradient(w, q[qi], docs[di], self.scale, mask)
                if self.l2:
                    grad += 2.0 * self.l2 * (w - eye)
                step += 1
                # Adam, in place: m, v running moments; w -= lr_t * m_hat / (sqrt(v_hat) + eps)
                m *= beta1
                m += (1 - beta1) * grad
                v *= beta2
                np.multiply(grad, grad, out=grad)
                grad *= 1 - beta2
                v += grad
                np.sqrt(v, out=grad)
                grad /= np.sqrt(1 - beta2**step)
                grad += eps
                np.divide(m, grad, out=grad)
                w -= self.learning_rate * min(1.0, step / warmup) / (1 - beta1**step) * grad
                total += loss * rows.size
            score = val_hit1(w)
            history["epoch"].append(epoch)
            history["train_loss"].append(total / n_pairs)
            history["val_hit@1"].append(score)
            if score > best:
                best, best_w, best_epoch = score, w.copy(), epoch
            elif epoch - best_epoch >= self.patience:
                break
        self.matrix_ = best_w.astype(np.float64)
        self.val_score_ = best
        self.best_epoch_ = best_epoch
        self.history_ = history

    # ------------------------------------------------------------------ applying
    def transform_queries(self, queries: np.ndarray) -> np.ndarray:
        """Adapted queries ``W q``, L2-normalised (cosine and dot product then rank alike).

        Parameters
        ----------
        queries : ndarray, shape (n, d)

        Returns
        -------
        ndarray, shape (n, d), the dtype of ``queries`` (a new array)
        """
        if not hasattr(self, "matrix_"):
            raise NotFittedError("this QueryAdapter is not fitted yet: call fit() first")
        x = check_matrix(queries, "queries", dim=self.n_features_in_, reference="the fitted adapter")
        return _unit(x.astype(np.float64) @ self.matrix_.T).astype(x.dtype)
