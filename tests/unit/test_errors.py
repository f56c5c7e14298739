from dwml_py.errors import ConfigError, DwmlError, GateRefused, NotFoundError, did_you_mean


def test_exit_codes_follow_the_design():
    assert DwmlError("x").exit_code == 1
    assert ConfigError("x").exit_code == 1
    assert NotFoundError("x").exit_code == 1
    assert GateRefused("x").exit_code == 2


def test_error_carries_message_and_hint():
    err = ConfigError("No profile 'x'.", hint="add it")
    assert err.to_dict() == {"error": "ConfigError", "message": "No profile 'x'.", "hint": "add it"}
    assert "Hint: add it" in str(err)


def test_did_you_mean_proposes_close_names():
    assert did_you_mean("custmer_features", ["customer_features", "plans"]) == "did you mean 'customer_features'?"
    assert did_you_mean("zzz", ["a", "b"]) == "known names: a, b"
    assert did_you_mean("zzz", []) == "there are none"


def test_doctests():
    import doctest

    from dwml_py import errors

    assert doctest.testmod(errors).failed == 0
