def add_item(item, items=[]):
    """Return a list with item appended to items (a new list when items is not given)."""
    items.append(item)
    return items
