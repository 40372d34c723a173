class Counter:
    def __init__(self, start: int = 0) -> None:
        <CURSOR>

    def increment(self) -> int:
        self.value += 1
        return self.value
# ==== tests ====
c = Counter(5)
assert c.increment() == 6
assert Counter().increment() == 1
