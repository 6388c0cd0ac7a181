from nas.pareto import pareto_keys


def test_front_keeps_only_non_dominated_points() -> None:
    points = [("a", (80.0, 10.0)), ("b", (70.0, 5.0)), ("c", (60.0, 6.0)), ("d", (85.0, 20.0)), ("e", (70.0, 5.0))]
    front = set(pareto_keys(points, ["maximize", "minimize"]))
    assert front == {"a", "b", "d", "e"}  # c is dominated by b; b and e tie, both stay


def test_empty_and_single() -> None:
    assert pareto_keys([], ["maximize", "minimize"]) == []
    assert pareto_keys([(1, (0.0, 1.0))], ["maximize", "minimize"]) == [1]
