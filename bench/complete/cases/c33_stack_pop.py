class Stack:
    def __init__(self) -> None:
        self.items: list = []

    def push(self, item) -> None:
        self.items.append(item)

    def pop(self):
        """Remove and return the top item."""
        return <CURSOR>

    def __len__(self) -> int:
        return len(self.items)
# ==== tests ====
s = Stack()
s.push(1)
s.push(2)
assert s.pop() == 2
assert len(s) == 1
