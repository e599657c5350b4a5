"""Radiology report text: the CT-RATE finding labeler, report-generation metrics, template reports and the
report-generation model (visual prefix + causal LM). Importing this package loads nothing heavy."""
