import numpy as np

from deployments.cache.index import VectorIndex


def unit(seed: int, dim: int = 8) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def test_search_is_per_scope_and_ordered():
    idx = VectorIndex(8)
    idx.add("s1", "a", unit(1), "a", 1e12)
    idx.add("s1", "b", unit(2), "b", 1e12)
    idx.add("s2", "c", unit(1), "c", 1e12)
    found = idx.search("s1", unit(1), 4, 0, 0.0 - 1)
    assert [s.key for s, _ in found][0] == "a" and abs(found[0][1] - 1.0) < 1e-5
    assert {s.key for s, _ in idx.search("s2", unit(1), 4, 0, -1)} == {"c"}
    assert idx.search("nope", unit(1), 4, 0, -1) == []


def test_threshold_expiry_and_removal():
    idx = VectorIndex(8)
    idx.add("s", "a", unit(1), "a", 100.0)
    idx.add("s", "b", unit(1) * 0.999, "b", 1e12)
    assert [s.key for s, _ in idx.search("s", unit(1), 4, 200.0, 0.9)] == ["b"]  # a expired
    assert idx.remove("b") and not idx.remove("b")
    (slot, score), = idx.search("s", unit(1), 4, 0, 0.9)  # at time 0, a is live again; b is gone
    assert slot.key == "a" and abs(score - 1.0) < 1e-5
    assert idx.sweep(200.0) == ["a"] and len(idx) == 0 and not idx.scopes


def test_scores_are_cosine_similarities():
    """The score is the cosine of the query and the stored vector, computed here without FAISS."""
    idx = VectorIndex(8)
    stored = {f"k{i}": unit(i) for i in range(5)}
    for key, vec in stored.items():
        idx.add("s", key, vec, key, 1e12)
    query = unit(42)
    expected = {k: float(np.dot(v.astype(np.float64), query.astype(np.float64))) for k, v in stored.items()}
    found = idx.search("s", query, 5, 0, -1.0)
    assert [s.key for s, _ in found] == sorted(expected, key=expected.get, reverse=True)
    for slot, score in found:
        assert abs(score - expected[slot.key]) < 1e-5
    above = [s.key for s, _ in idx.search("s", query, 5, 0, 0.0)]
    assert above == [k for k in sorted(expected, key=expected.get, reverse=True) if expected[k] >= 0.0]


def test_compaction_keeps_live_vectors_findable():
    idx = VectorIndex(8)
    for i in range(200):
        idx.add("s", f"k{i}", unit(i), str(i), 1e12)
    for i in range(150):
        idx.remove(f"k{i}")
    assert idx.scopes["s"].index.ntotal < 200  # compacted
    for i in (150, 199):
        assert idx.search("s", unit(i), 1, 0, 0.99)[0][0].key == f"k{i}"
    assert len(idx) == 50


def test_clear_by_namespace_prefix():
    idx = VectorIndex(8)
    idx.add("r1|s", "r1|a", unit(1), "a", 1e12)
    idx.add("r2|s", "r2|b", unit(2), "b", 1e12)
    assert idx.clear("r1|") == 1 and "r2|b" in idx and "r1|a" not in idx
