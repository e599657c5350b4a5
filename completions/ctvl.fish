# ctvl fish completion, generated from the Typer app by `make completions`. Do not edit.

complete -c ctvl -f
complete -c ctvl -n '__fish_use_subcommand' -a cache -d 'Inspect, verify and merge HDF5 embedding caches.'
complete -c ctvl -n '__fish_use_subcommand' -a embed -d '(not built yet) Volumes and report texts to embeddings, cached in HDF5.'
complete -c ctvl -n '__fish_use_subcommand' -a finetune -d '(not built yet) Contrastive fine-tuning and linear probes.'
complete -c ctvl -n '__fish_use_subcommand' -a generate-report -d '(not built yet) Radiology report generation from a CT volume.'
complete -c ctvl -n '__fish_use_subcommand' -a models -d 'List, inspect and download registered models.'
complete -c ctvl -n '__fish_use_subcommand' -a retrieve -d '(not built yet) Image-to-image and report-to-image search, plus retrieval metrics.'
complete -c ctvl -n '__fish_use_subcommand' -a segment-organs -d '(not built yet) Organ masks (lungs, heart, aorta, airways...) from chest CT.'
complete -c ctvl -n '__fish_use_subcommand' -a zeroshot -d '(not built yet) Zero-shot abnormality probabilities from label prompts.'
complete -c ctvl -n '__fish_seen_subcommand_from cache' -a info -d 'Summarise a cache file.'
complete -c ctvl -n '__fish_seen_subcommand_from cache' -l help
complete -c ctvl -n '__fish_seen_subcommand_from cache ; and __fish_seen_subcommand_from info' -l help
complete -c ctvl -n '__fish_seen_subcommand_from cache ; and __fish_seen_subcommand_from info' -F
complete -c ctvl -n '__fish_seen_subcommand_from embed' -l help
complete -c ctvl -n '__fish_seen_subcommand_from embed' -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune' -l help
complete -c ctvl -n '__fish_seen_subcommand_from finetune' -F
complete -c ctvl -n '__fish_seen_subcommand_from generate-report' -l help
complete -c ctvl -n '__fish_seen_subcommand_from generate-report' -F
complete -c ctvl -n '__fish_seen_subcommand_from models' -a list -d 'List registered models.'
complete -c ctvl -n '__fish_seen_subcommand_from models' -l help
complete -c ctvl -n '__fish_seen_subcommand_from models ; and __fish_seen_subcommand_from list' -l help
complete -c ctvl -n '__fish_seen_subcommand_from models ; and __fish_seen_subcommand_from list' -F
complete -c ctvl -n '__fish_seen_subcommand_from retrieve' -l help
complete -c ctvl -n '__fish_seen_subcommand_from retrieve' -F
complete -c ctvl -n '__fish_seen_subcommand_from segment-organs' -l help
complete -c ctvl -n '__fish_seen_subcommand_from segment-organs' -F
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot' -l help
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot' -F
