"""Retrieval: FAISS indexes over cached image embeddings and CT-CLIP's retrieval metrics."""
