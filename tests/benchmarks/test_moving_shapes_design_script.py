"""benchmarks/moving_shapes_design.py prints the design numbers docs/synthetic-data.md quotes."""


def test_prints_gravity_shading_slowing_and_matching(moving_shapes_design, capsys):
    moving_shapes_design.main(["--videos", "24"])
    out = capsys.readouterr().out
    down = float(out.split("(px/step^2): down ")[1].split()[0])
    without = float(out.split("(without gravity ")[1].split(",")[0])
    backwards = float(out.split("played backwards ")[1].split(")")[0])
    height = float(out.split("below where it would be: ")[1].split()[0])
    assert down - without > 0.15 and backwards > 0.15 and abs(height) < 0.5  # 0.1: 0.21
    shading = float(out.split("moving object: ")[1].split()[0])
    slowing = float(out.split("last 8: ")[1].split()[0])
    assert shading > 1.5 and slowing > 3.5  # object_light 0.6, friction 0.8
    assert "| default |" in out and "| shaded |" in out and "| classic (no dusk) |" in out
