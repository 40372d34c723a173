def reverse_words(sentence):
    """The words of sentence in reverse order, separated by single spaces."""
    return "".join(reversed(sentence.split()))
