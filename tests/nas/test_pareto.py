from nas.pareto import pareto_keys


def test_front_keeps_only_non_dominated_points() -> None:
    points = [("a", (80.0, 10.0)), ("b", (70.0, 5.0)), ("c", (60.0, 6.0)), ("d", (85.0, 20.0)), ("e", (70.0, 5.0))]
    front = set(pareto_keys(points, ["maximize", "minimize"]))
    assert front == {"a", "b", "d", "e"}  # c is dominated by b; b and e tie, both stay


def test_empty_and_single() -> None:
    assert pareto_keys([], ["maximize", "minimize"]) == []
    assert pareto_keys([(1, (0.0, 1.0))], ["maximize", "minimize"]) == [1]


def test_fast_path_agrees_with_optunas_public_best_trials() -> None:
    import numpy as np

    from nas.pareto import _public_front, pareto_mask

    rng = np.random.default_rng(0)
    values = np.column_stack([rng.uniform(0, 100, 300).round(1), rng.uniform(1, 10, 300).round(2)])
    dirs = ["maximize", "minimize"]
    assert (pareto_mask(values, dirs) == _public_front(values, dirs)).all()
