def count_vowels(s):
    """How many vowels (a, e, i, o, u, in either case) s has."""
    return sum(1 for ch in s if ch in "aeiou")
