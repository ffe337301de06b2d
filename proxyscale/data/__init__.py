"""Input data: readers of the public file formats and Hugging Face records, tokenizers, and the
preparation of training token streams, holdout documents and tokenised test sets."""
