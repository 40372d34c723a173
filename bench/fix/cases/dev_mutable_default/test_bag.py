from bag import add_item


def test_fresh_lists():
    assert add_item(1) == [1]
    assert add_item(2) == [2]

def test_given_list():
    assert add_item(3, [1, 2]) == [1, 2, 3]
