"""The baseline of batch scoring: what a hand-written scorer does with the same model.

Arrow record batches straight from the warehouse, the model inputs built with pyarrow/numpy from
the fitted encoders' categories (numbers passed through, one-hot by category index, ordinal codes
with -1 unknown / -2 missing, as dwml_py.preprocessing defines them), and the bare booster's
`inplace_predict`. No pandas, no scikit-learn transform, no write-back.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dwml_py.preprocessing import MISSING_CATEGORY, MISSING_CODE, UNKNOWN_CODE


class BareScorer:
    """The model inputs and the booster of a dwml XGBoost model, without its preprocessing code."""

    def __init__(self, model):
        transformers = {name: (step, list(columns)) for name, step, columns in model.preprocessor.transformers_}
        self.numeric = transformers["num"][1] if "num" in transformers else []
        self.onehot = []
        if "cat" in transformers:
            step, columns = transformers["cat"]
            categories = step.named_steps["onehot"].categories_
            self.onehot = [(c, pa.array([str(v) for v in cats])) for c, cats in zip(columns, categories)]
        self.ordinal = []
        if "high" in transformers:
            step, columns = transformers["high"]
            self.ordinal = [(c, pa.array([str(v) for v in cats])) for c, cats in zip(columns, step.categories_)]
        self.width = len(self.numeric) + sum(len(c) for _, c in self.onehot) + len(self.ordinal)
        self.booster = model.estimator.get_booster()

    def inputs(self, batch) -> np.ndarray:
        n = batch.num_rows
        x = np.zeros((n, self.width), dtype=np.float32)
        for j, name in enumerate(self.numeric):
            x[:, j] = pc.cast(batch.column(name), pa.float64()).to_numpy(zero_copy_only=False)
        offset = len(self.numeric)
        rows = np.arange(n)
        for name, categories in self.onehot:
            column = batch.column(name)
            index = pc.index_in(pc.fill_null(column, MISSING_CATEGORY), value_set=categories)
            known = ~np.asarray(index.is_null())
            x[rows[known], offset + index.to_numpy(zero_copy_only=False)[known].astype(np.int64)] = 1.0
            offset += len(categories)
        for name, categories in self.ordinal:
            column = batch.column(name)
            index = pc.index_in(column, value_set=categories)
            codes = pc.fill_null(index, UNKNOWN_CODE).to_numpy(zero_copy_only=False).astype(np.float32)
            codes[np.asarray(column.is_null())] = MISSING_CODE
            x[:, offset] = codes
            offset += 1
        return x

    def predict(self, batch) -> np.ndarray:
        return self.booster.inplace_predict(self.inputs(batch))
