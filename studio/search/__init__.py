"""Cross-modal search: vector indexes of a folder's photos, video moments and sounds (FAISS), kept on disk under
`<models-dir>/indexes/<name>/`, and the retrieval metrics (Recall@K, median rank) of image-caption pairs."""
