"""The governance policy of a project: `vars: dwml: governance:` of dbt_project.yml over dwml's
defaults, checked. Read by the governance gate and by the catalog (which calls the same columns
PII as the gate), so it sits below both."""

from __future__ import annotations

from dwml_py.errors import ConfigError, did_you_mean
from dwml_py.pii import DEFAULT_MIN_MATCH_SHARE, DEFAULT_SAMPLE_ROWS
from dwml_py.settings import project_var

LEVELS = ("public", "internal", "confidential", "restricted")

DEFAULT_POLICY = {
    "allow_pii_features": False,
    "max_feature_classification": "confidential",
    "require_owner": True,
    "require_description": True,
    "sample_rows": DEFAULT_SAMPLE_ROWS,
    "min_match_share": DEFAULT_MIN_MATCH_SHARE,
}


def resolve_policy(project_config: dict) -> dict:
    """The defaults overridden by `vars: dwml: governance:` of dbt_project.yml."""
    where = "vars: dwml: governance: in dbt_project.yml"
    given = project_var(project_config, "governance")
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ConfigError(f"{where} must be a mapping, got {given!r}.",
                          hint=f"known settings: {', '.join(DEFAULT_POLICY)}.")
    unknown = sorted(set(given) - set(DEFAULT_POLICY))
    if unknown:
        raise ConfigError(f"Unknown governance setting {unknown[0]!r} in {where}.",
                          hint=f"{did_you_mean(unknown[0], DEFAULT_POLICY)} (known: {', '.join(DEFAULT_POLICY)})")
    policy = {**DEFAULT_POLICY, **given}
    for key in ("allow_pii_features", "require_owner", "require_description"):
        if not isinstance(policy[key], bool):
            raise ConfigError(f"{key} in {where} must be true or false, got {policy[key]!r}.", hint=f"e.g. {key}: true")
    level = str(policy["max_feature_classification"]).lower()
    if level not in LEVELS:
        raise ConfigError(f"max_feature_classification in {where} must be one of {', '.join(LEVELS)}, "
                          f"got {policy['max_feature_classification']!r}.", hint=did_you_mean(level, LEVELS))
    policy["max_feature_classification"] = level
    rows = policy["sample_rows"]
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise ConfigError(f"sample_rows in {where} must be a whole number >= 0, got {rows!r}.",
                          hint="e.g. sample_rows: 1000; 0 turns value sampling off.")
    share = policy["min_match_share"]
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
        raise ConfigError(f"min_match_share in {where} must be a share in (0, 1], got {share!r}.",
                          hint="e.g. min_match_share: 0.5 flags a column when half its sampled values match.")
    return policy
