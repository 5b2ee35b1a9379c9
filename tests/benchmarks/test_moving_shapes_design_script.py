"""benchmarks/moving_shapes_design.py prints the design numbers docs/synthetic-data.md quotes."""


def test_prints_shading_slowing_and_matching(moving_shapes_design, capsys):
    moving_shapes_design.main(["--videos", "24"])
    out = capsys.readouterr().out
    shading = float(out.split("moving object: ")[1].split()[0])
    slowing = float(out.split("last 8: ")[1].split()[0])
    assert shading > 1.5 and slowing > 3.5  # object_light 0.6, friction 0.8
    assert "| default |" in out and "| classic (no dusk) |" in out
