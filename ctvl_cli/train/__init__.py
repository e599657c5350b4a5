"""Training: contrastive CLIP fine-tuning (``finetune clip``), linear probes (``finetune probe``) and report
tokenizers (``finetune tokenizer``). Imports torch lazily."""
