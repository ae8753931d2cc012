"""Teaching the models your own classes: few-shot heads on frozen embeddings, their training, saving and loading."""
