from chat.tree import Node, Tree


def _tree():
    # 1 user → 2 reply, 3 regenerated reply; 3 → 4 user → 5 reply; 1's edit 6 → 7 reply
    return Tree([Node(1, None), Node(2, 1), Node(3, 1), Node(4, 3), Node(5, 4), Node(6, None), Node(7, 6)])


def test_it_walks_root_to_leaf():
    assert _tree().path_to(5) == [1, 3, 4, 5]
    assert _tree().path_to(2) == [1, 2]


def test_an_unknown_or_missing_leaf_is_an_empty_path():
    assert _tree().path_to(None) == []
    assert _tree().path_to(99) == []


def test_it_lists_siblings_in_creation_order():
    assert _tree().siblings(3) == [2, 3]
    assert _tree().siblings(6) == [1, 6]


def test_switching_to_a_sibling_lands_on_its_newest_leaf():
    tree = _tree()
    assert tree.latest_leaf_under(3) == 5
    assert tree.latest_leaf_under(2) == 2
    assert tree.latest_leaf_under(1) == 5


def test_it_lists_every_leaf_depth_first():
    assert _tree().leaves() == [2, 5, 7]
    assert Tree([]).leaves() == []
