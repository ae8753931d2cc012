"""Audio-visual fusion heads: small classifiers over a clip's sound and picture embeddings (`heads`), trained on a
user's labelled clips, and saved with checksums (`store`)."""
