"""Defaults that the tool registry publishes in its parameter schemas. They live here, not in the
modules that use them, so that building the CLI or listing the tools imports none of those."""

# where `dwml features pipeline` writes a feature model (dwml_py.feature_pipeline)
FEATURE_PIPELINE_DIRECTORY = "models/features"
# where `dwml deploy --scaffold` writes the scoring model (dwml_py.scoring_scaffold)
SCAFFOLD_DIRECTORY = "models/ml_scoring"
# rows of the target sampled to score candidate features (dwml_py.feature_suggestions)
SUGGESTION_SAMPLE_SIZE = 20_000
# the metric `dwml status` leads with, per task
HEADLINE_METRIC = {"classification": "roc_auc", "regression": "rmse"}
