"""Knowledge base: ingest articles, chunk, embed, index with FAISS, search."""
