"""Zero-shot classification from label prompts (CT-CLIP protocol by default)."""
