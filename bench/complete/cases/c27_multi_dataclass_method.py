from dataclasses import dataclass


@dataclass
class Point:
    x: float
    y: float

    def distance_to(self, other: "Point") -> float:
        """The Euclidean distance to other."""
        <CURSOR>
# ==== tests ====
# lines: 2
assert Point(0, 0).distance_to(Point(3, 4)) == 5.0
