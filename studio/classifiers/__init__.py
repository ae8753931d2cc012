"""Teaching the models your own classes: stores of classifiers and examples, frozen-embedding heads, fusion heads,
exports."""
