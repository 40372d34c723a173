class Rectangle:
    def __init__(self, width: float, height: float) -> None:
        self.width = width
        self.height = height

    def area(self) -> float:
        return <CURSOR>

    def perimeter(self) -> float:
        return 2 * (self.width + self.height)
# ==== tests ====
assert Rectangle(3, 4).area() == 12
assert Rectangle(3, 4).perimeter() == 14
